# plot.gp - the benchmark's two plots, drawn from the data tq-bench writes.
#
#   gnuplot -e "data='bench/out'; dest='bench'" bench/plot.gp
#
# latency.png: the distribution of the no-op round trip (one in flight) as
# a CDF for tq (default, and with handlers in the worker's loop), the raw
# ZeroMQ floor and Gearman.  throughput.png: no-op
# tasks per second against the window (tasks in flight), 16 B, one worker.

if (!exists("data")) data = 'bench/out'
if (!exists("dest")) dest = 'bench'

set terminal pngcairo size 900,540 font "sans,11" noenhanced
set datafile missing '?'
set grid
set key bottom right

# ---- latency ----
set output dest.'/latency.png'
set title 'No-op round trip, 16 B argument, one task in flight'
set xlabel 'latency (us, log scale)'
set ylabel 'fraction of tasks at or below'
set logscale x
set yrange [0:1]
plot data.'/latency-floor.dat' using 1:2 with lines lw 2 title 'floor (raw ZeroMQ relay)', \
     data.'/latency-tq.dat' using 1:2 with lines lw 2 title 'tq', \
     (system('test -s '.data.'/latency-tq-inline.dat && echo 1') eq '1' ? \
         data.'/latency-tq-inline.dat' : '/dev/null') using 1:2 with lines lw 2 \
         title 'tq, --isolation none', \
     (system('test -s '.data.'/latency-gearman.dat && echo 1') eq '1' ? \
         data.'/latency-gearman.dat' : '/dev/null') using 1:2 with lines lw 2 title 'gearman'
unset logscale x
unset yrange

# ---- throughput against window ----
set output dest.'/throughput.png'
set title 'No-op tasks per second against tasks in flight (16 B, one worker)'
set xlabel 'window (tasks in flight, log scale)'
set ylabel 'tasks per second (log scale)'
set logscale xy
set xrange [0.7:1500]
set key top left
plot data.'/throughput.dat' using 1:3 with linespoints lw 2 pt 7 title 'floor (raw ZeroMQ relay)', \
     '' using 1:2 with linespoints lw 2 pt 5 title 'tq', \
     '' using 1:5 with linespoints lw 2 pt 11 title 'tq, --isolation none', \
     '' using 1:4 with linespoints lw 2 pt 9 title 'gearman'
