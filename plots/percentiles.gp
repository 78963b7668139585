# percentiles.gp — latency percentiles against concurrency: p50 solid, p99
# dashed, p99.9 dotted, one colour per server (medians over repetitions).
load plotdir.'/common.gp'
set title sprintf("%s: latency percentiles (p50 solid, p99 dashed, p99.9 dotted)\n%s", \
    scenario, subtitle)
set ylabel 'latency, ms (log scale)'
set logscale y
plot for [i=1:nseries] series(i) using 1:11 with linespoints ls ls_of(i) dt 1 title title[i].' p50', \
     for [i=1:nseries] series(i) using 1:13 with linespoints ls ls_of(i) dt 2 title title[i].' p99', \
     for [i=1:nseries] series(i) using 1:14 with linespoints ls ls_of(i) dt 3 title title[i].' p99.9'
