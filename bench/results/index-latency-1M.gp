set terminal pngcairo noenhanced size 880,550
set output './index-latency-1M.png'
set title "lookup p99 latency while a writer inserts/deletes, N = 1M keys"
set xlabel 'threads (2 cores)'
set ylabel 'p99 ns'
set logscale x 2
set grid
set key outside right
set logscale y
plot './index-latency-1M.dat' index 0 using 1:2 with linespoints title 'cidstore', './index-latency-1M.dat' index 1 using 1:2 with linespoints title 'cidstore_presized', './index-latency-1M.dat' index 2 using 1:2 with linespoints title 'cidstore_serialized', './index-latency-1M.dat' index 3 using 1:2 with linespoints title 'cds_lfht_growing', './index-latency-1M.dat' index 4 using 1:2 with linespoints title 'cds_lfht_presized', './index-latency-1M.dat' index 5 using 1:2 with linespoints title 'libcuckoo', './index-latency-1M.dat' index 6 using 1:2 with linespoints title 'tbb_chm', './index-latency-1M.dat' index 7 using 1:2 with linespoints title 'rwlock_table', './index-latency-1M.dat' index 8 using 1:2 with linespoints title 'mutex_table'
