set terminal pngcairo size 900,560 noenhanced
set grid
set key top left
set output 'benchmarks/results/2026-12-07T204748Z/rss.png'
set title 'Server RSS against idle subscribed connections'
set xlabel 'connections'
set ylabel 'RSS (MiB)'
set yrange [0:*]
plot 'benchmarks/results/2026-12-07T204748Z/plots/rss_livecast.dat' using 1:2 with linespoints lw 2 title 'livecast'
