set terminal pngcairo size 900,560 noenhanced
set grid
set key top left
set output '/work/main/benchmarks/results/2026-12-07T232359Z/latency.png'
set logscale x
set xlabel 'latency from intended publication time (ms)'
set ylabel 'share of deliveries'
set title 'Headline workload: latency distribution'
plot '/work/main/benchmarks/results/2026-12-07T232359Z/plots/latency_livecast.dat' using 1:2 with steps lw 2 title 'livecast', '/work/main/benchmarks/results/2026-12-07T232359Z/plots/latency_ws.dat' using 1:2 with steps lw 2 title 'ws 8'
unset logscale x
set output '/work/main/benchmarks/results/2026-12-07T232359Z/throughput.png'
set terminal pngcairo size 1200,800 noenhanced
set multiplot layout 2,2 title 'Deliveries/s against offered load'
set logscale x
set title '1 topic, 100 B'
set xlabel 'offered (k deliveries/s)'
set ylabel 'delivered (k/s)'
plot '/work/main/benchmarks/results/2026-12-07T232359Z/plots/throughput_one_100_livecast.dat' using 1:2 with linespoints lw 2 title 'livecast', '/work/main/benchmarks/results/2026-12-07T232359Z/plots/throughput_one_100_ws.dat' using 1:2 with linespoints lw 2 title 'ws 8', x with lines dt 2 lc rgb 'gray' title 'offered'
set logscale x
set title '1 topic, 1000 B'
set xlabel 'offered (k deliveries/s)'
set ylabel 'delivered (k/s)'
plot '/work/main/benchmarks/results/2026-12-07T232359Z/plots/throughput_one_1000_livecast.dat' using 1:2 with linespoints lw 2 title 'livecast', '/work/main/benchmarks/results/2026-12-07T232359Z/plots/throughput_one_1000_ws.dat' using 1:2 with linespoints lw 2 title 'ws 8', x with lines dt 2 lc rgb 'gray' title 'offered'
set logscale x
set title '100-subscriber topics, 100 B'
set xlabel 'offered (k deliveries/s)'
set ylabel 'delivered (k/s)'
plot '/work/main/benchmarks/results/2026-12-07T232359Z/plots/throughput_many_100_livecast.dat' using 1:2 with linespoints lw 2 title 'livecast', '/work/main/benchmarks/results/2026-12-07T232359Z/plots/throughput_many_100_ws.dat' using 1:2 with linespoints lw 2 title 'ws 8', x with lines dt 2 lc rgb 'gray' title 'offered'
set logscale x
set title '100-subscriber topics, 1000 B'
set xlabel 'offered (k deliveries/s)'
set ylabel 'delivered (k/s)'
plot '/work/main/benchmarks/results/2026-12-07T232359Z/plots/throughput_many_1000_livecast.dat' using 1:2 with linespoints lw 2 title 'livecast', '/work/main/benchmarks/results/2026-12-07T232359Z/plots/throughput_many_1000_ws.dat' using 1:2 with linespoints lw 2 title 'ws 8', x with lines dt 2 lc rgb 'gray' title 'offered'
unset multiplot
unset logscale x
set terminal pngcairo size 900,560 noenhanced
