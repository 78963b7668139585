# common.gp — loaded first by every chart script: the output terminal and the
# look all charts share. Expects, from scripts/plot (gnuplot -e): datadir (what
# result2dat wrote, including meta.gp), out (the file to write), fmt (png|svg).
load datadir.'/meta.gp'
if (fmt eq 'svg') {
    set terminal svg size 960,600 dynamic noenhanced font 'sans,12' background rgb 'white'
} else {
    set terminal pngcairo size 960,600 noenhanced font 'sans,10' background rgb 'white'
}
set output out
set logscale x
set xrange [xmin/1.25:xmax*1.25]
# level_name and xlabel_text come from meta.gp (what the levels count); a
# meta.gp from an older result2dat lacks them
if (!exists('xlabel_text')) { xlabel_text = 'concurrency (connections, log scale)' }
if (!exists('level_name')) { level_name = 'concurrency' }
if (!exists('in_flight')) { in_flight = 1 }
set xlabel xlabel_text
set grid xtics ytics mytics lc rgb '#dddddd'
set key top left box opaque
set samples 400
set style line 1 lc rgb '#1f77b4' lw 2 pt 7 ps 0.8
set style line 2 lc rgb '#d62728' lw 2 pt 5 ps 0.8
set style line 3 lc rgb '#2ca02c' lw 2 pt 9 ps 0.9
set style line 4 lc rgb '#9467bd' lw 2 pt 13 ps 0.9
set style line 5 lc rgb '#ff7f0e' lw 2 pt 11 ps 0.9
set style line 6 lc rgb '#8c564b' lw 2 pt 3 ps 0.9
set style line 7 lc rgb '#e377c2' lw 2 pt 1 ps 0.9
set style line 8 lc rgb '#17becf' lw 2 pt 2 ps 0.9
set style increment user
series(i) = sprintf('%s/series-%d.dat', datadir, i)
dist(i) = sprintf('%s/dist-%d.dat', datadir, i)
ls_of(i) = (i - 1) % 8 + 1
