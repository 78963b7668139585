# cost.gp — CPU per request against concurrency: one colour per server, one
# dash pattern per cost field (server CPU solid, load generator CPU dashed, and
# any field result2dat's COST_FIELDS gains later in the next pattern), min–max
# bars over repetitions. From cost-N.dat: column 1 the level, then three
# columns (median, min, max, µs per request) per field of cost_title.
load plotdir.'/common.gp'
set title sprintf("%s: CPU per request (lower is better)\n%s", scenario, subtitle)
set ylabel 'CPU per request, µs (log scale; bars: min–max over repetitions)'
set logscale y
set key top right
cost(i) = sprintf('%s/cost-%d.dat', datadir, i)
# each series is in the key once per field: its short title (no runtime) keeps
# the key narrow; a meta.gp from an older result2dat has only title
if (!exists('shorttitle')) { array shorttitle[nseries]; do for [i=1:nseries] { shorttitle[i] = title[i] } }
plot for [j=1:ncost] for [i=1:nseries] cost(i) \
    using 1:(column(3*j-1)):(column(3*j)):(column(3*j+1)) \
    with yerrorlines ls ls_of(i) dt j title shorttitle[i].' '.cost_title[j]
