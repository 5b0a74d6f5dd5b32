set terminal pngcairo size 900,560 noenhanced
set grid
set key top left
set output '/work/main/benchmarks/results/2026-12-07T132613Z/latency.png'
set logscale x
set xlabel 'latency from intended publication time (ms)'
set ylabel 'share of deliveries'
set title 'Headline workload: latency distribution'
plot '/work/main/benchmarks/results/2026-12-07T132613Z/plots/latency_livecast.dat' using 1:2 with steps lw 2 title 'livecast', '/work/main/benchmarks/results/2026-12-07T132613Z/plots/latency_livecast-sio.dat' using 1:2 with steps lw 2 title 'livecast (Socket.IO protocol)', '/work/main/benchmarks/results/2026-12-07T132613Z/plots/latency_socketio.dat' using 1:2 with steps lw 2 title 'Socket.IO 4.8'
unset logscale x
