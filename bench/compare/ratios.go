package main

import (
	"fmt"
	"strings"
)

// The rows issue 16's targets compare, by the names runners gives them
// (ociSubject names runc's "runc run").
const (
	rowAPI   = "sandboxd API, pool on"
	rowExec  = "sandboxd exec"
	rowRunc  = "runc run"
	rowBwrap = "bwrap --unshare-all"
)

// target is one line of the ratios block: a figure of this run beside the
// issue's bound for it.
type target struct {
	what, goal string
	value      float64
	shown      string // value with what it was computed from
	missing    string // why there is no value
	atMost     bool   // the bound is an upper one
	bound      float64
}

func (t target) row() string {
	if t.missing != "" {
		return fmt.Sprintf("| %s | not measured: %s | %s | — |\n", t.what, t.missing, t.goal)
	}
	met := t.value >= t.bound
	if t.atMost {
		met = t.value <= t.bound
	}
	return fmt.Sprintf("| %s | %s | %s | %s |\n", t.what, t.shown, t.goal, map[bool]string{true: "yes", false: "no"}[met])
}

// find returns the measurement of the named row, or why it has none.
func find(results []measurement, name string) (measurement, string) {
	for _, r := range results {
		if r.name == name {
			if r.skipped != "" {
				return r, name + ": " + r.skipped
			}
			return r, ""
		}
	}
	return measurement{}, name + ": not in this run"
}

// ratiosText renders issue 16's targets beside this run's figures.
func ratiosText(results []measurement, c cTestsResult) string {
	sbx, sbxMissing := find(results, rowAPI)
	ts := append(throughputTargets(results), execTargets(results)...)
	for _, t := range []target{
		{what: "sandboxd API back to back, p50", goal: "≤ 2 ms", atMost: true, bound: 2, value: ms(sbx.p50)},
		{what: "sandboxd API back to back, p99", goal: "≤ 6 ms", atMost: true, bound: 6, value: ms(sbx.p99)},
		{what: "sandboxd API CPU/run (daemon + sandbox cgroups)", goal: "≤ 3 ms", atMost: true, bound: 3, value: ms(sbx.cpu)},
	} {
		t.missing, t.shown = sbxMissing, fmt.Sprintf("%.2f ms", t.value)
		ts = append(ts, t)
	}
	ts = append(ts, target{what: fmt.Sprintf("C, %d tests in one request: total − program's CPU", cTestCount), goal: "≤ 150 ms", atMost: true, bound: 150,
		value: ms(c.overhead), shown: fmt.Sprintf("%.1f ms (%.1f − %.1f)", ms(c.overhead), ms(c.total), ms(c.program)), missing: c.skipped})
	var b strings.Builder
	b.WriteString("Ratios and issue 16's targets, from this run:\n\n| figure | measured | target | met |\n|---|---|---|---|\n")
	for _, t := range ts {
		b.WriteString(t.row())
	}
	return b.String()
}

// throughputTargets: sandboxd's rate at concurrency 4, alone and beside
// bwrap's in the same run.
func throughputTargets(results []measurement) []target {
	const c = 4
	sbx, sbxMissing := find(results, rowAPI)
	bw, bwMissing := find(results, rowBwrap)
	sbxRate, ok := sbx.throughput[c]
	if sbxMissing == "" && !ok {
		sbxMissing = fmt.Sprintf("%s: the runs at concurrency %d failed", rowAPI, c)
	}
	bwRate, ok := bw.throughput[c]
	if bwMissing == "" && !ok {
		bwMissing = fmt.Sprintf("%s: the runs at concurrency %d failed", rowBwrap, c)
	}
	ratio := target{what: fmt.Sprintf("sandboxd API runs/s @%d ÷ bwrap runs/s @%d", c, c), goal: "≥ 1.5×", bound: 1.5, missing: firstOf(sbxMissing, bwMissing)}
	if ratio.missing == "" {
		ratio.value = sbxRate / bwRate
		ratio.shown = fmt.Sprintf("%.2f× (%.0f ÷ %.0f)", ratio.value, sbxRate, bwRate)
	}
	abs := target{what: fmt.Sprintf("sandboxd API runs/s @%d", c), goal: "≥ 400", bound: 400, value: sbxRate, shown: fmt.Sprintf("%.0f", sbxRate), missing: sbxMissing}
	return []target{ratio, abs}
}

// execTargets: `sandboxd exec`'s p50, alone and beside runc's.
func execTargets(results []measurement) []target {
	ex, exMissing := find(results, rowExec)
	rc, rcMissing := find(results, rowRunc)
	ratio := target{what: "sandboxd exec p50 ÷ runc run p50", goal: "≤ 0.5×", atMost: true, bound: 0.5, missing: firstOf(exMissing, rcMissing)}
	if ratio.missing == "" {
		ratio.value = float64(ex.p50) / float64(rc.p50)
		ratio.shown = fmt.Sprintf("%.2f× (%.2f ÷ %.2f ms)", ratio.value, ms(ex.p50), ms(rc.p50))
	}
	abs := target{what: "sandboxd exec p50", goal: "≤ 10 ms", atMost: true, bound: 10, value: ms(ex.p50), shown: fmt.Sprintf("%.2f ms", ms(ex.p50)), missing: exMissing}
	return []target{ratio, abs}
}

func firstOf(reasons ...string) string {
	for _, r := range reasons {
		if r != "" {
			return r
		}
	}
	return ""
}
