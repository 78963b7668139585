# trend.gp — one figure over the commits of results/history.jsonl, one line per
# server (or per server:app for instruction counts), commits in CI order on the
# x axis, labelled with their short hash. Expects, from scripts/trend
# (gnuplot -e): datadir (meta.gp and data.dat: index label value...), out, fmt.
load datadir.'/meta.gp'
if (fmt eq 'svg') {
    set terminal svg size 1100,560 dynamic noenhanced font 'sans,12' background rgb 'white'
} else {
    set terminal pngcairo size 1100,560 noenhanced font 'sans,10' background rgb 'white'
}
set output out
set title chart_title
set ylabel ylab
set xlabel 'commit (CI runs in order)'
set grid xtics ytics lc rgb '#dddddd'
set key outside right top box opaque
set xrange [-0.5:npoints-0.5]
set yrange [0:*]
set xtics rotate by -45 nomirror
if (npoints > 30) { set xtics 0, int(npoints / 20) }
set style line 1 lc rgb '#1f77b4' lw 2 pt 7 ps 0.8
set style line 2 lc rgb '#d62728' lw 2 pt 5 ps 0.8
set style line 3 lc rgb '#2ca02c' lw 2 pt 9 ps 0.9
set style line 4 lc rgb '#9467bd' lw 2 pt 13 ps 0.9
set style line 5 lc rgb '#ff7f0e' lw 2 pt 11 ps 0.9
set style line 6 lc rgb '#8c564b' lw 2 pt 3 ps 0.9
ls_of(i) = (i - 1) % 6 + 1
file = datadir.'/data.dat'
plot for [i=1:ncols] file using 1:(column(i + 2)):xticlabels(2) with linespoints \
    ls ls_of(i) title name[i]
