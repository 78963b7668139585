# common.gp — loaded first by every chart script: the output terminal and the
# look all charts share. Expects, from scripts/plot (gnuplot -e): datadir (what
# result2dat wrote, including meta.gp), out (the file to write), fmt (png|svg).
# A chart may set term_h (pixels) first: the cost chart grows with its rows.
load datadir.'/meta.gp'
if (!exists('term_h')) { term_h = 600 }
if (fmt eq 'svg') {
    set terminal svg size 960,term_h dynamic noenhanced font 'sans,12' background rgb 'white'
} else {
    set terminal pngcairo size 960,term_h noenhanced font 'sans,10' background rgb 'white'
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
# Grouped by how a row waits (the result's series "style", result2dat's
# lstyle[i]): implicit in blues and greens with filled points, explicit in
# reds and oranges with open points, unlabelled rows in purple, brown, grey
# and olive.
set style line 11 lc rgb '#1f77b4' lw 2 pt 7 ps 0.8
set style line 12 lc rgb '#17becf' lw 2 pt 5 ps 0.8
set style line 13 lc rgb '#2ca02c' lw 2 pt 9 ps 0.9
set style line 14 lc rgb '#08306b' lw 2 pt 13 ps 0.9
set style line 15 lc rgb '#6baed6' lw 2 pt 11 ps 0.9
set style line 16 lc rgb '#006d2c' lw 2 pt 15 ps 0.9
set style line 21 lc rgb '#d62728' lw 2 pt 6 ps 0.8
set style line 22 lc rgb '#ff7f0e' lw 2 pt 4 ps 0.8
set style line 23 lc rgb '#e377c2' lw 2 pt 8 ps 0.9
set style line 24 lc rgb '#8c2d04' lw 2 pt 12 ps 0.9
set style line 25 lc rgb '#fdae6b' lw 2 pt 10 ps 0.9
set style line 26 lc rgb '#a50f15' lw 2 pt 14 ps 0.9
set style line 31 lc rgb '#9467bd' lw 2 pt 3 ps 0.9
set style line 32 lc rgb '#8c564b' lw 2 pt 1 ps 0.9
set style line 33 lc rgb '#7f7f7f' lw 2 pt 2 ps 0.9
set style line 34 lc rgb '#bcbd22' lw 2 pt 3 ps 0.9
set style increment user
series(i) = sprintf('%s/series-%d.dat', datadir, i)
dist(i) = sprintf('%s/dist-%d.dat', datadir, i)
# a meta.gp from an older result2dat has no lstyle
if (!exists('styled')) { styled = 0 }
ls_of(i) = styled ? lstyle[i] : (i - 1) % 8 + 1
if (styled) {
    set key title 'implicit: blues/greens, filled points; explicit: reds/oranges, open points' left
}
