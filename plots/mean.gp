# mean.gp — mean time per request against concurrency (ab's "Time per request"
# across all concurrent requests is this divided by c; this is the per-request
# latency a client sees), min–max bars over repetitions.
load plotdir.'/common.gp'
set title sprintf("%s: mean time per request (lower is better)\n%s", scenario, subtitle)
set ylabel 'mean latency, ms (log scale; bars: min–max over repetitions)'
set logscale y
if (delay_ms > 0) {
    plot for [i=1:nseries] series(i) using 1:5:6:7 with yerrorlines ls ls_of(i) title title[i], \
        delay_ms with lines dt 2 lw 1.5 lc rgb '#555555' title sprintf('upstream delay %g ms', delay_ms)
} else {
    plot for [i=1:nseries] series(i) using 1:5:6:7 with yerrorlines ls ls_of(i) title title[i]
}
