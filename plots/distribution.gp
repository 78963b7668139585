# distribution.gp — the latency distribution at one level (plot_level in the
# scenario), HdrHistogram-style: the x axis spreads the tail (1/(1-p)) so p99,
# p99.9 and the maximum are visible. At each percentile, the median over the
# repetitions of that percentile (results/SCHEMA.md, "Aggregation": the rule
# of every chart). In a rate sweep the corrected distribution solid and the
# uncorrected one (from each request's actual start) dashed.
load plotdir.'/common.gp'
unset logscale x
set logscale x 10
set xrange [1:*]
set xtics ('0%%' 1, '50%%' 2, '90%%' 10, '99%%' 100, '99.9%%' 1000, '99.99%%' 10000, '99.999%%' 100000)
set xlabel 'percentile'
set title sprintf("%s: latency distribution at %s %d (median over repetitions at each percentile)\n%s", \
    scenario, level_name, plot_level, subtitle)
set ylabel 'latency, ms (log scale)'
set logscale y
set key bottom right
if (exists('rate_sweep') && rate_sweep) {
    set ylabel 'latency, ms (log scale): solid from the intended start, dashed from the actual start'
    plot for [i=1:nseries] dist(i) using 2:3 with steps ls ls_of(i) title title[i].' corrected', \
         for [i=1:nseries] dist(i) using 2:4 with steps ls ls_of(i) dt 2 title title[i].' uncorrected'
    exit
}
plot for [i=1:nseries] dist(i) using 2:3 with steps ls ls_of(i) title title[i]
