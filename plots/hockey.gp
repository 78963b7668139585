# hockey.gp — the open model's latency against throughput (rate sweeps): for
# every series the corrected p50 (solid), p99 (dashed) and p99.9 (dotted),
# timed from each request's intended start, against the achieved requests/s
# (past a server's capacity the achieved rate falls behind the target, and
# the curve turns up: the hockey stick). Medians over repetitions, as every
# chart (results/SCHEMA.md, "Aggregation"). Each series' knee, the highest
# rate whose p99 stays within knee_factor times its unloaded p99, is circled
# and labelled with its rate (and, in brackets, the spread of the
# repetitions' own knees; a "+" where it is the highest rate measured); the
# thin dash-dotted line is that limit.
load plotdir.'/common.gp'
knee(i) = sprintf('%s/knee-%d.dat', datadir, i)
unset logscale x
set xrange [0:rps_max*1.1]
set xtics autofreq
set xlabel 'achieved requests/s (median over repetitions)'
set ylabel 'latency from the intended start, ms (log scale)'
set logscale y
set key top left box opaque font ',9'
if (!exists('shorttitle')) { array shorttitle[nseries]; do for [i=1:nseries] { shorttitle[i] = title[i] } }
set title sprintf("%s: corrected latency against throughput, knees circled (p99 within %gx the unloaded p99)\n%s", \
    scenario, knee_factor, subtitle)
plot for [i=1:nseries] series(i) using 2:11 with linespoints ls ls_of(i) dt 1 title shorttitle[i].' p50', \
     for [i=1:nseries] series(i) using 2:13 with linespoints ls ls_of(i) dt 2 title shorttitle[i].' p99', \
     for [i=1:nseries] series(i) using 2:14 with linespoints ls ls_of(i) dt 3 title shorttitle[i].' p99.9', \
     for [i=1:nseries] knee_limit[i] with lines ls ls_of(i) dt 4 lw 1 notitle, \
     for [i=1:nseries] knee(i) using 1:2 with points ls ls_of(i) pt 6 ps 4 lw 2 notitle, \
     for [i=1:nseries] knee(i) using 1:2:3 with labels offset 0,1.5+1.2*(i-1) tc ls ls_of(i) notitle
