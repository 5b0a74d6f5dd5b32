set terminal pngcairo size 900,560 noenhanced
set grid
set key top left
