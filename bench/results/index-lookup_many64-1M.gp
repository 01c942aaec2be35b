set terminal pngcairo noenhanced size 880,550
set output './index-lookup_many64-1M.png'
set title "lookup_many64, N = 1M keys"
set xlabel 'threads (2 cores)'
set ylabel 'Mops/s'
set logscale x 2
set grid
set key outside right
set yrange [0:*]
plot './index-lookup_many64-1M.dat' index 0 using 1:2 with linespoints title 'cidstore', './index-lookup_many64-1M.dat' index 1 using 1:2 with linespoints title 'cidstore_presized'
