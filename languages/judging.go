package languages

import (
	"context"
	"fmt"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/errdefs"
)

// planJudging settles what gives the tests their verdicts: each test's
// comparison, or the request's checker, and the groups and points.
func (s *Service) planJudging(ctx context.Context, call Call, req *api.ExecuteRequest, plan *Request) error {
	if err := checkJudgingFields(req); err != nil {
		return err
	}
	def, err := ParseCompare(req.Compare, LinesComparison, "compare")
	if err != nil {
		return err
	}
	if plan.Groups, err = SettleGroups(req.Groups, req.Tests); err != nil {
		return err
	}
	plan.Tests = make([]Test, len(req.Tests))
	for i, t := range req.Tests {
		c, err := ParseCompare(t.Compare, def, fmt.Sprintf("tests[%d].compare", i))
		if err != nil {
			return err
		}
		points := 1.0
		if t.Points != nil {
			points = *t.Points
		}
		plan.Scored = plan.Scored || t.Group != "" || t.Points != nil
		plan.Tests[i] = Test{Stdin: t.Stdin, ExpectedStdout: t.ExpectedStdout, Name: t.Name, Group: t.Group, Points: points, Compare: c}
	}
	if req.Checker != nil {
		plan.Checker, err = s.planChecker(ctx, call, req)
	}
	return err
}

// checkJudgingFields refuses judging fields that mean nothing together.
func checkJudgingFields(req *api.ExecuteRequest) error {
	hasTestCompare := false
	for _, t := range req.Tests {
		hasTestCompare = hasTestCompare || t.Compare != nil
	}
	switch {
	case len(req.Tests) == 0 && (req.Compare != nil || req.Checker != nil || req.CheckerLimits != nil || len(req.Groups) > 0):
		return errdefs.Invalidf(`"compare", "checker", "checker_limits" and "groups" judge "tests": give tests`)
	case req.Checker != nil && (req.Compare != nil || hasTestCompare):
		return errdefs.Invalidf(`"checker" judges every test: it excludes "compare", the request's and the tests'`)
	case req.CheckerLimits != nil && req.Checker == nil:
		return errdefs.Invalidf(`"checker_limits" without "checker"`)
	}
	return nil
}

// planChecker settles the request's checker.
func (s *Service) planChecker(ctx context.Context, call Call, req *api.ExecuteRequest) (*Aux, error) {
	return s.auxProgram(ctx, call, "checker", req.Checker, req.CheckerLimits)
}

// auxProgram settles a checker or an interactor (what names it in
// errors): its language and version, its sources, which must not take
// the names of the files each test gives it, and its limits (ask, then
// the language's, over the daemon's defaults).
func (s *Service) auxProgram(ctx context.Context, call Call, what string, p *api.Program, ask *api.Limits) (*Aux, error) {
	if len(p.Files) == 0 {
		return nil, errdefs.Invalidf(`%q: "files" is required; the first file is the main file`, what)
	}
	lang, err := s.lookup(p.Language)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	files, err := s.sources(p.Files)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if err := checkerFileClash(files); err != nil {
		return nil, errdefs.Invalidf(`%q: %v`, what, err)
	}
	if lang.CodePrefix != "" {
		files[0].Data = append([]byte(lang.CodePrefix), files[0].Data...)
	}
	version, img, err := s.resolve(ctx, call.Key, lang, p.Version)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	run, err := s.runLimits(call, lang, ask, what+"_limits")
	if err != nil {
		return nil, err
	}
	compile, err := s.compileLimits(call, lang, nil, what)
	if err != nil {
		return nil, err
	}
	return &Aux{Language: lang, Version: version, ImageID: img.ID, Files: files, Limits: run, CompileLimits: compile}, nil
}
