# stress/rbstress.rb: the Ruby interpreter's allocation stress (issue 11's
# "ruby interpreter allocation stress", after the shape of the rbstress
# benchmarks): THREADS Ruby threads each build strings of 0..99 spaces;
# half go to a working array that is dropped every 200,000 strings (garbage
# for the collector), and one in sixteen is kept to the end.  A string past
# 23 bytes has its bytes in a malloc'ed buffer, and the collector's sweep
# frees the buffers of dead strings with malloc_usable_size and free, from
# whichever thread runs it: frees of cold blocks, many of another thread's.
# The threads share the interpreter's lock, so they take turns.
#
#   ruby stress/rbstress.rb [THREADS [STRINGS]]
#
# Prints: rbstress threads=T seconds=S maxrss_kib=K strings=N
threads = (ARGV[0] || 1).to_i
strings = (ARGV[1] || 4_000_000).to_i
abort "usage: ruby rbstress.rb [THREADS [STRINGS]]" if threads < 1 || strings < threads

def build(count, keep_every, drop_at, kept, seed)
  rng = Random.new(seed)
  working = []
  count.times do |i|
    s = " " * rng.rand(100)
    if (i % keep_every).zero?
      kept << s
    else
      working << s
      working = [] if working.length >= drop_at
    end
  end
end

start = Process.clock_gettime(Process::CLOCK_MONOTONIC)
kept = Array.new(threads) { [] }
workers = (0...threads).map do |t|
  Thread.new { build(strings / threads, 16, 200_000, kept[t], 42 + t) }
end
workers.each(&:join)
seconds = Process.clock_gettime(Process::CLOCK_MONOTONIC) - start
peak = File.read("/proc/self/status")[/^VmHWM:\s+(\d+)/, 1]
puts "rbstress threads=#{threads} seconds=#{format('%.4f', seconds)} maxrss_kib=#{peak} " \
     "strings=#{strings / threads * threads}"
