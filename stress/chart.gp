# chart.gp: the peer comparison chart, drawn by stress/compare.
#
#   gnuplot -e "timefile='time.dat'; rssfile='rss.dat'; outfile='ratios.svg'; \
#               nalloc=5; subtitle='...'" chart.gp
#
# Each data file has a header line "row alloc1 alloc2 ..." and one line per
# workload/threads row: the row's label and each allocator's ratio to the best
# allocator of the row (1 = best; NA = no result).  Top panel: median wall
# time; bottom panel: median peak RSS.  Log scale, so 2x slower and 2x faster
# look the same size.
if (!exists("subtitle")) subtitle = ''
if (!exists("fmt")) fmt = 'svg'
if (fmt eq 'png') {
    set terminal pngcairo size 1400,1000 font 'sans,10'
} else {
    set terminal svg size 1400,1000 dynamic font 'sans,11' background '#ffffff'
}
set output outfile
set datafile missing 'NA'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set logscale y 2
set grid ytics
set xtics rotate by -40 left nomirror
set key at screen 0.99, screen 0.93 right top vertical
set lmargin at screen 0.06
set rmargin at screen 0.88
set format y '%gx'
# one colour per allocator, hmm first
array colours[6] = ['#d62728', '#7f7f7f', '#1f77b4', '#2ca02c', '#ff7f0e', '#9467bd']

set multiplot layout 2,1 title 'hmm vs peers: ratio to the best allocator of each row (lower is better)' . subtitle
set ylabel 'time / best'
set yrange [0.9:*]
plot for [i=2:nalloc+1] timefile using i:xtic(1) title columnheader(i) lc rgb colours[(i-2)%6+1]
set ylabel 'peak RSS / best'
unset key
plot for [i=2:nalloc+1] rssfile using i:xtic(1) title columnheader(i) lc rgb colours[(i-2)%6+1]
unset multiplot
