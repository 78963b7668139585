# distribution.gp — the latency distribution at one concurrency level
# (plot_level in the scenario), HdrHistogram-style: the x axis spreads the
# tail (1/(1-p)) so p99, p99.9 and the maximum are visible, all repetitions
# merged.
load plotdir.'/common.gp'
unset logscale x
set logscale x 10
set xrange [1:*]
set xtics ('0%%' 1, '50%%' 2, '90%%' 10, '99%%' 100, '99.9%%' 1000, '99.99%%' 10000, '99.999%%' 100000)
set xlabel 'percentile'
set title sprintf("%s: latency distribution at %s %d (all repetitions)\n%s", \
    scenario, level_name, plot_level, subtitle)
set ylabel 'latency, ms (log scale)'
set logscale y
set key bottom right
plot for [i=1:nseries] dist(i) using 2:3 with steps ls ls_of(i) title title[i]
