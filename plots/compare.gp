# compare.gp — one app of `scripts/compare --plot`: requests per second (left)
# and p99 latency (right) against concurrency for every server of the app,
# baseline dashed, new solid, one colour per server, so a throughput curve
# that sagged is seen at a glance. Expects, from scripts/compare (gnuplot -e):
# datadir (holding meta.gp and sN-base.dat / sN-new.dat: level rps p99_ms),
# out (the file to write), fmt (png|svg).
load datadir.'/meta.gp'
if (fmt eq 'svg') {
    set terminal svg size 1280,560 dynamic noenhanced font 'sans,12' background rgb 'white'
} else {
    set terminal pngcairo size 1280,560 noenhanced font 'sans,10' background rgb 'white'
}
set output out
set logscale x
set xrange [xmin/1.25:xmax*1.25]
set xlabel 'concurrency (connections, log scale)'
set grid xtics ytics lc rgb '#dddddd'
set key top left box opaque
set style line 1 lc rgb '#1f77b4' lw 2 pt 7 ps 0.8
set style line 2 lc rgb '#d62728' lw 2 pt 5 ps 0.8
set style line 3 lc rgb '#2ca02c' lw 2 pt 9 ps 0.9
set style line 4 lc rgb '#9467bd' lw 2 pt 13 ps 0.9
set style line 5 lc rgb '#ff7f0e' lw 2 pt 11 ps 0.9
set style line 6 lc rgb '#8c564b' lw 2 pt 3 ps 0.9
ls_of(i) = (i - 1) % 6 + 1
file(i, which) = sprintf('%s/s%d-%s.dat', datadir, i, which)

set multiplot layout 1,2 title chart_title
set title 'requests per second (higher is better)'
set ylabel 'requests/s (median over repetitions)'
set yrange [0:*]
plot for [i=1:nseries] file(i, 'base') using 1:2 with linespoints ls ls_of(i) dt 2 \
        title name[i].' baseline', \
    for [i=1:nseries] file(i, 'new') using 1:2 with linespoints ls ls_of(i) dt 1 \
        title name[i].' new'
set title 'p99 latency (lower is better)'
set ylabel 'p99 ms (median over repetitions, log scale)'
set logscale y
set yrange [*:*]
plot for [i=1:nseries] file(i, 'base') using 1:3 with linespoints ls ls_of(i) dt 2 \
        title name[i].' baseline', \
    for [i=1:nseries] file(i, 'new') using 1:3 with linespoints ls ls_of(i) dt 1 \
        title name[i].' new'
unset multiplot
