# percentiles.gp — latency percentiles against concurrency: p50 solid, p99
# dashed, p99.9 dotted, one colour per server (medians over repetitions).
load plotdir.'/common.gp'
set title sprintf("%s: latency percentiles (p50 solid, p99 dashed, p99.9 dotted%s)\n%s", \
    scenario, exists('rate_sweep') && rate_sweep ? '; from the intended start' : '', subtitle)
set ylabel 'latency, ms (log scale)'
set logscale y
# each series is in the key three times: its short title (no runtime) keeps
# the key narrow; a meta.gp from an older result2dat has only title
if (!exists('shorttitle')) { array shorttitle[nseries]; do for [i=1:nseries] { shorttitle[i] = title[i] } }
plot for [i=1:nseries] series(i) using 1:11 with linespoints ls ls_of(i) dt 1 title shorttitle[i].' p50', \
     for [i=1:nseries] series(i) using 1:13 with linespoints ls ls_of(i) dt 2 title shorttitle[i].' p99', \
     for [i=1:nseries] series(i) using 1:14 with linespoints ls ls_of(i) dt 3 title shorttitle[i].' p99.9'
