set terminal pngcairo noenhanced size 880,550
set output './index-mix90_10-16M.png'
set title "mix90_10, N = 16M keys"
set xlabel 'threads (2 cores)'
set ylabel 'Mops/s'
set logscale x 2
set grid
set key outside right
set yrange [0:*]
plot './index-mix90_10-16M.dat' index 0 using 1:2 with linespoints title 'cidstore', './index-mix90_10-16M.dat' index 1 using 1:2 with linespoints title 'cidstore_presized', './index-mix90_10-16M.dat' index 2 using 1:2 with linespoints title 'cds_lfht_presized', './index-mix90_10-16M.dat' index 3 using 1:2 with linespoints title 'libcuckoo', './index-mix90_10-16M.dat' index 4 using 1:2 with linespoints title 'tbb_chm', './index-mix90_10-16M.dat' index 5 using 1:2 with linespoints title 'rwlock_table'
