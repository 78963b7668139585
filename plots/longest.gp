# longest.gp — the longest request of each level against concurrency (ab's
# "longest request"), min–max bars over repetitions.
load plotdir.'/common.gp'
set title sprintf("%s: longest request (lower is better)\n%s", scenario, subtitle)
set ylabel 'longest request, ms (log scale; bars: min–max over repetitions)'
set logscale y
plot for [i=1:nseries] series(i) using 1:8:9:10 with yerrorlines ls ls_of(i) title title[i]
