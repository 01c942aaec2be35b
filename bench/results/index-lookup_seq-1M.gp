set terminal pngcairo noenhanced size 880,550
set output './index-lookup_seq-1M.png'
set title "lookup_seq, N = 1M keys"
set xlabel 'threads (2 cores)'
set ylabel 'Mops/s'
set logscale x 2
set grid
set key outside right
set yrange [0:*]
plot './index-lookup_seq-1M.dat' index 0 using 1:2 with linespoints title 'cidstore', './index-lookup_seq-1M.dat' index 1 using 1:2 with linespoints title 'cidstore_presized', './index-lookup_seq-1M.dat' index 2 using 1:2 with linespoints title 'cidstore_serialized', './index-lookup_seq-1M.dat' index 3 using 1:2 with linespoints title 'cds_lfht_growing', './index-lookup_seq-1M.dat' index 4 using 1:2 with linespoints title 'cds_lfht_presized', './index-lookup_seq-1M.dat' index 5 using 1:2 with linespoints title 'libcuckoo', './index-lookup_seq-1M.dat' index 6 using 1:2 with linespoints title 'tbb_chm', './index-lookup_seq-1M.dat' index 7 using 1:2 with linespoints title 'rwlock_table', './index-lookup_seq-1M.dat' index 8 using 1:2 with linespoints title 'mutex_table'
