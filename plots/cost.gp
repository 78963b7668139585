# cost.gp — where each request's CPU goes, against concurrency: one panel per
# series, at each level a bar of its CPU per request stacked in bands
# (result2dat's COST_FIELDS: the server's user and system time, the server's
# time where too few clock ticks split it, the upstream stub's, the load
# generator's), the total on top with min–max bars over repetitions. Panels
# share the y axis, so the servers compare at a glance; a panel's title holds
# the series' instructions per request where they were counted. From
# cost-N.dat: column 1 the level, then median/min/max per band, then each
# band's top in the stack (column 1 + 3*ncost + j), then the total's median,
# min and max, then the total again and its label where the bar is cut.
#
# The y axis ends at cost_ytop (result2dat: it fits the levels with
# fit_in_flight or more requests in flight); a lighter level's bar that passes
# it is cut at the top and carries its total in a box, so the loaded levels
# are not squeezed into a sliver by c = 1 and no bar is drawn shorter than it
# is without saying so; the boxes of neighbouring levels alternate in height
# so that they do not overlap. The key has a strip of its own under the title, so it
# covers no panel whatever their number.
load datadir.'/meta.gp'
np = 0
if (exists('hascost')) {
    do for [i=1:nseries] { np = np + hascost[i] }
} else {
    np = nseries
}
cols = np <= 3 ? np : (np == 4 ? 2 : 3)
rows = int((np + cols - 1) / cols)
# two rows fit the common 600 pixels; each row more adds 210
term_h = rows <= 2 ? 600 : 600 + 210 * (rows - 2)
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
# ... or one from before the cut bars: the axis fits every bar
if (!exists('cost_ytop')) { cost_ytop = cost_max * 1.1; cost_clipped = 0 }
band_color(k) = k eq 'server_cpu_user' ? '#1f77b4' : k eq 'server_cpu_sys' ? '#ff7f0e' : \
    k eq 'server_cpu' ? '#a6a6a6' : k eq 'upstream_cpu' ? '#2ca02c' : \
    k eq 'loadgen_cpu' ? '#9467bd' : '#8c564b'
top(j) = j < 1 ? 0 : column(1 + 3*ncost + j)
total_col = 2 + 4*ncost
clip_col = 5 + 4*ncost
# a bar spans level/hw .. level*hw: narrower where two levels are close
hw = level_ratio_min ** 0.4 < 1.3 ? level_ratio_min ** 0.4 : 1.3

# The layout in pixels, turned into screen fractions: the chart's title, the
# key's strip (a line more for the note on cut bars), then the grid of panels,
# each with its title above and its x labels below.
W = 960.0
H = term_h * 1.0
title_px = 46
key_px = 44 + (cost_clipped > 0 ? 16 : 0)
ptitle_px = 40
bottom_px = 46
rowgap_px = 56 + ptitle_px
left_px = 66
right_px = 14
colgap_px = 74
pw = (W - left_px - right_px - (cols - 1) * colgap_px) / cols
ph = (H - title_px - key_px - ptitle_px - bottom_px - (rows - 1) * rowgap_px) / rows
px0(c) = (left_px + c * (pw + colgap_px)) / W
px1(c) = (left_px + c * (pw + colgap_px) + pw) / W
py1(r) = 1 - (title_px + key_px + ptitle_px + r * (ph + rowgap_px)) / H
py0(r) = py1(r) - ph / H

set multiplot title \
    sprintf("%s: CPU per request by where it is spent (lower is better)\n%s", scenario, subtitle)

# the key alone, in its strip: an empty plot whose only content is the key
unset border
unset tics
unset grid
unset logscale x
unset xlabel
set xrange [0:1]
set yrange [0:1]
set lmargin at screen 0.01
set rmargin at screen 0.99
set tmargin at screen 1 - title_px / H
set bmargin at screen 1 - (title_px + key_px) / H
set style fill solid 0.85 noborder
set key at screen 0.5, 1 - title_px / H center top horizontal noopaque nobox \
    font ',9' samplen 1.5 spacing 1.0 width 1 maxrows 2
set key title ''
if (cost_clipped > 0) {
    set label 1 sprintf("the y axis fits the levels with %d or more requests in flight; " \
        ."a bar cut at the top carries its total, µs, in a box", fit_in_flight) \
        at screen 0.5, 1 - (title_px + key_px - 8) / H center font ',8' tc rgb '#444444'
}
plot 2 notitle, \
    for [j=1:ncost] keyentry with boxes fc rgb band_color(cost_key[j]) title cost_title[j], \
    keyentry with yerrorlines lc rgb '#222222' lw 1.2 pt 7 ps 0.5 \
        title 'total (bars: min–max over repetitions)'
unset label 1

# the panels, left to right, top to bottom; they share the y axis
set border
set tics
set xtics nomirror
set ytics mirror
set grid xtics ytics mytics lc rgb '#dddddd'
set logscale x
set xlabel xlabel_text
# room on the left for a cut bar's box at the first level
set xrange [xmin / (hw * (cost_clipped > 0 ? 1.8 : 1.15)) : xmax * hw * 1.15]
set yrange [0:cost_ytop]
set ylabel 'CPU per request, µs'
unset key
set style textbox opaque border lc rgb '#444444' margins 1.5, 1.5
p = 0
do for [i=1:nseries] {
    if (hascost[i]) {
        c = p % cols
        r = int(p / cols)
        set lmargin at screen px0(c)
        set rmargin at screen px1(c)
        set tmargin at screen py1(r)
        set bmargin at screen py0(r)
        set title shorttitle[i].(icount[i] ne '' ? "\n".icount[i] : '') font ',9'
        plot for [j=1:ncost] cost(i) \
                using 1:(top(j)):($1 / hw):($1 * hw):(top(j-1)):(top(j)) with boxxyerror \
                fc rgb band_color(cost_key[j]) notitle, \
            cost(i) using 1:(column(total_col)):(column(total_col + 1)):(column(total_col + 2)) \
                with yerrorlines lc rgb '#222222' lw 1.2 pt 7 ps 0.5 notitle, \
            cost(i) using 1:(column(clip_col) != column(clip_col) ? NaN : \
                cost_ytop * (int($0) % 2 ? 0.81 : 0.93)):(stringcolumn(clip_col + 1)) \
                with labels boxed font ',8' notitle
        p = p + 1
    }
}
unset multiplot
