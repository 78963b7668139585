# throughput.gp — requests per second against concurrency, one line per server,
# min–max bars over repetitions; where the scenario has an upstream delay,
# Little's bound (requests in flight / delay: the most any server can do when every
# request waits that long) dashed. In a rate sweep: the achieved rate against
# the target, with the target itself (achieved = offered) dashed.
load plotdir.'/common.gp'
if (exists('rate_sweep') && rate_sweep) {
    set title sprintf("%s: achieved against target rate (on the dashed line: kept)\n%s", scenario, subtitle)
    set ylabel 'achieved requests/s (median; bars: min–max over repetitions; log scale)'
    set logscale y
    set yrange [xmin/1.25:xmax*1.25]
    plot for [i=1:nseries] series(i) using 1:2:3:4 with yerrorlines ls ls_of(i) title title[i], \
        x with lines dt 2 lw 1.5 lc rgb '#555555' title 'target: achieved = offered'
    exit
}
set title sprintf("%s: requests per second (higher is better)\n%s", scenario, subtitle)
set ylabel 'requests/s (median; bars: min–max over repetitions)'
set yrange [0:rps_max*1.15]
if (delay_ms > 0) {
    plot for [i=1:nseries] series(i) using 1:2:3:4 with yerrorlines ls ls_of(i) title title[i], \
        x * in_flight * 1000.0 / delay_ms with lines dt 2 lw 1.5 lc rgb '#555555' \
        title (in_flight > 1 ? \
            sprintf("Little's bound: requests in flight (%g x level) / %g ms", in_flight, delay_ms) : \
            sprintf("Little's bound: concurrency / %g ms", delay_ms))
} else {
    plot for [i=1:nseries] series(i) using 1:2:3:4 with yerrorlines ls ls_of(i) title title[i]
}
