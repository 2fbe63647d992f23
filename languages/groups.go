package languages

import (
	"math"
	"slices"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/errdefs"
)

// GroupRule is a settled group: declared in the request's "groups", or
// named by a test alone (then with the defaults).
type GroupRule struct {
	Name          string
	StopOnFailure bool
	DependsOn     []string
}

// SettleGroups checks the request's groups against its tests: names are
// unique and used by some test, a group depends only on groups whose
// tests all come before its first, and points are finite and >= 0. It
// returns the groups in the order of their first test.
func SettleGroups(declared []api.Group, tests []api.Test) ([]GroupRule, error) {
	byName := map[string]api.Group{}
	for i, g := range declared {
		if g.Name == "" {
			return nil, errdefs.Invalidf(`"groups"[%d]: "name" is required`, i)
		}
		if _, dup := byName[g.Name]; dup {
			return nil, errdefs.Invalidf(`"groups": %q is declared twice`, g.Name)
		}
		byName[g.Name] = g
	}
	first, last := map[string]int{}, map[string]int{}
	var order []string
	for i, t := range tests {
		if t.Points != nil && (math.IsNaN(*t.Points) || math.IsInf(*t.Points, 0) || *t.Points < 0) {
			return nil, errdefs.Invalidf(`"tests"[%d]: "points" must be a finite number >= 0`, i)
		}
		if t.Group == "" {
			continue
		}
		if _, seen := first[t.Group]; !seen {
			first[t.Group] = i
			order = append(order, t.Group)
		}
		last[t.Group] = i
	}
	rules := make([]GroupRule, 0, len(order))
	for _, name := range order {
		g := byName[name]
		rule := GroupRule{Name: name, StopOnFailure: g.StopOnFailure == nil || *g.StopOnFailure, DependsOn: g.DependsOn}
		for _, dep := range g.DependsOn {
			if _, ok := first[dep]; !ok || dep == name {
				return nil, errdefs.Invalidf(`"groups": %q depends on %q, which no other test names`, name, dep)
			}
			if last[dep] > first[name] {
				return nil, errdefs.Invalidf(`"groups": %q depends on %q, so every test of %q must come before the first of %q`,
					name, dep, dep, name)
			}
		}
		rules = append(rules, rule)
	}
	for _, g := range declared {
		if _, ok := first[g.Name]; !ok {
			return nil, errdefs.Invalidf(`"groups": no test is in group %q`, g.Name)
		}
	}
	return rules, nil
}

// scorer follows the groups while the tests run: which tests to skip, and
// what each group and the request score.
type scorer struct {
	scored bool
	rules  map[string]GroupRule
	groups map[string]*api.GroupResult
	order  []string
	score  float64
	max    float64
}

func newScorer(req *Request) *scorer {
	s := &scorer{scored: req.Scored, rules: map[string]GroupRule{}, groups: map[string]*api.GroupResult{}}
	for _, g := range req.Groups {
		s.rules[g.Name] = g
		s.groups[g.Name] = &api.GroupResult{Name: g.Name, Status: StatusAccepted, Tests: []int{}, Skipped: []int{}}
		s.order = append(s.order, g.Name)
	}
	return s
}

// skip: the test's group has stopped at a failure, or one of the groups
// it depends on was not accepted in full.
func (s *scorer) skip(t Test) bool {
	g, ok := s.groups[t.Group]
	if !ok {
		return false
	}
	rule := s.rules[t.Group]
	if rule.StopOnFailure && g.Status != StatusAccepted {
		return true
	}
	return slices.ContainsFunc(rule.DependsOn, func(dep string) bool { return s.groups[dep].Status != StatusAccepted })
}

// record counts test i's outcome: its points, and its group's.
func (s *scorer) record(i int, t Test, tr *api.TestResult) {
	earned := 0.0
	switch tr.Status {
	case StatusAccepted:
		earned = t.Points
	case StatusPartial:
		frac, _ := pointsFraction(tr.Message)
		earned = frac * t.Points
	}
	s.score += earned
	s.max += t.Points
	if s.scored {
		tr.Points, tr.MaxPoints = ptr(earned), ptr(t.Points)
	}
	g, ok := s.groups[t.Group]
	if !ok {
		return
	}
	g.Score += earned
	g.MaxScore += t.Points
	if tr.Status == StatusSkipped {
		// Only a group's dependencies can skip its first test; once
		// skipped, the group is not accepted for those depending on it.
		g.Skipped = append(g.Skipped, i)
		if g.Status == StatusAccepted {
			g.Status = StatusSkipped
		}
		return
	}
	g.Tests = append(g.Tests, i)
	if g.Status == StatusAccepted && tr.Status != StatusAccepted {
		g.Status = tr.Status
	}
}

// finish sets the outcome's groups and score, when the request is scored.
func (s *scorer) finish(out *Outcome) {
	if !s.scored {
		return
	}
	for _, name := range s.order {
		g := s.groups[name]
		if len(g.Tests) == 0 {
			g.Status = StatusSkipped
		}
		out.Groups = append(out.Groups, *g)
	}
	out.Score, out.MaxScore = ptr(s.score), ptr(s.max)
}

func ptr(v float64) *float64 { return &v }
