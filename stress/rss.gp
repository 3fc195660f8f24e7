# rss.gp: resident memory against time, one line per allocator, drawn by
# stress/compare from the steady-churn soak.
#
#   gnuplot -e "files='rss-hmm.dat rss-glibc.dat'; names='hmm glibc'; \
#               outfile='RSS.svg'; subtitle='...'" rss.gp
#
# Each data file has one line per sample: seconds since the start, VmRSS in
# KiB.  Colours follow the allocator's place in names, as in chart.gp.
if (!exists("subtitle")) subtitle = ''
set terminal svg size 1000,600 dynamic font 'sans,11' background '#ffffff'
set output outfile
set title 'RSS over time, steady churn over a fixed live set (hmm-bench soak -t 2)' . subtitle
set xlabel 'seconds'
set ylabel 'RSS (MiB)'
set yrange [0:*]
set grid
set key left top
array colours[6] = ['#d62728', '#7f7f7f', '#1f77b4', '#2ca02c', '#ff7f0e', '#9467bd']
plot for [i=1:words(files)] word(files, i) using 1:($2 / 1024) title word(names, i) \
    with lines lw 2 lc rgb colours[(i - 1) % 6 + 1]
