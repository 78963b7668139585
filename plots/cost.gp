# cost.gp — where each request's CPU goes, against concurrency: one panel per
# series, at each level a bar of its CPU per request stacked in bands
# (result2dat's COST_FIELDS: the server's user and system time, the server's
# time where too few clock ticks split it, the upstream stub's, the load
# generator's), the total on top with min–max bars over repetitions. Panels
# share the y axis, so the servers compare at a glance; a panel's title holds
# the series' instructions per request where they were counted. From
# cost-N.dat: column 1 the level, then median/min/max per band, then each
# band's top in the stack (column 1 + 3*ncost + j), then the total's median,
# min and max.
load plotdir.'/common.gp'
cost(i) = sprintf('%s/cost-%d.dat', datadir, i)
# a meta.gp from an older result2dat: one line per field, no bands
if (!exists('cost_max') || !exists('hascost')) {
    set title sprintf("%s: CPU per request (lower is better)\n%s", scenario, subtitle)
    set ylabel 'CPU per request, µs'
    plot for [j=1:ncost] for [i=1:nseries] cost(i) using 1:(column(3*j-1)) \
        with lines ls ls_of(i) dt j title title[i].' '.cost_title[j]
    exit
}
band_color(k) = k eq 'server_cpu_user' ? '#1f77b4' : k eq 'server_cpu_sys' ? '#ff7f0e' : \
    k eq 'server_cpu' ? '#a6a6a6' : k eq 'upstream_cpu' ? '#2ca02c' : \
    k eq 'loadgen_cpu' ? '#9467bd' : '#8c564b'
top(j) = j < 1 ? 0 : column(1 + 3*ncost + j)
# a bar spans level/hw .. level*hw: narrower where two levels are close
hw = level_ratio_min ** 0.4 < 1.3 ? level_ratio_min ** 0.4 : 1.3
set xrange [xmin / (hw * 1.15) : xmax * hw * 1.15]
np = 0
do for [i=1:nseries] { np = np + hascost[i] }
cols = np <= 3 ? np : (np == 4 ? 2 : 3)
rows = int((np + cols - 1) / cols)
unset logscale y
set yrange [0:cost_max * 1.4]
set ylabel 'CPU per request, µs'
set style fill solid 0.85 noborder
set key top right box opaque font ',8' samplen 1.5 spacing 0.9
set key title ''
set multiplot layout rows, cols title \
    sprintf("%s: CPU per request by where it is spent (lower is better)\n%s", scenario, subtitle)
first = 1
do for [i=1:nseries] {
    if (hascost[i]) {
        set title shorttitle[i].(icount[i] ne '' ? "\n".icount[i] : '') font ',9'
        if (!first) { unset key }
        plot for [j=1:ncost] cost(i) \
                using 1:(top(j)):($1 / hw):($1 * hw):(top(j-1)):(top(j)) with boxxyerror \
                fc rgb band_color(cost_key[j]) title cost_title[j], \
            cost(i) using 1:(column(2 + 4*ncost)):(column(3 + 4*ncost)):(column(4 + 4*ncost)) \
                with yerrorlines lc rgb '#222222' lw 1.2 pt 7 ps 0.5 \
                title 'total (bars: min–max over repetitions)'
        first = 0
    }
}
unset multiplot
