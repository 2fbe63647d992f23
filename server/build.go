package server

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/build"
	"github.com/sandboxd/sandboxd/images"
	"github.com/sandboxd/sandboxd/limits"
)

// Builder builds images from recipes; *build.Builder is one.
type Builder interface {
	Build(ctx context.Context, r build.Recipe, ev build.Events) (*images.Image, error)
}

// maxBuildSteps bounds a recipe's steps.
const maxBuildSteps = 64

// actionBuild is the audit action of an image build.
const actionBuild = "image.build"

// handleBuild runs a recipe and answers with NDJSON: a step event before
// each step, its output as it is read, a step_end event with its result,
// then the new image as the result event (or an error event). A request
// refused before the first step is an ordinary error answer.
func (s *Server) handleBuild(w http.ResponseWriter, r *http.Request, rec *execRecord) {
	req, err := decode[api.BuildRequest](s, w, r)
	var recipe build.Recipe
	if err == nil {
		recipe, err = s.recipe(rec, req)
	}
	if err != nil {
		s.writeError(w, r, rec, err)
		return
	}
	stream := newEventStream(w)
	ev := &buildEvents{s: stream}
	ev.out, ev.err, ev.flush = stream.outputs()
	img, err := s.Builder.Build(r.Context(), recipe, ev)
	if err == nil {
		s.log.Info("image built", "name", img.Name, "id", img.ID, "from", req.From, "steps", len(req.Run), "size", img.SizeBytes)
		out := toAPIImage(img)
		s.answer(w, r, rec, stream, &out, nil)
		return
	}
	s.answer(w, r, rec, stream, nil, err)
}

// recipe validates a build request.
func (s *Server) recipe(rec *execRecord, req *api.BuildRequest) (build.Recipe, error) {
	rc := build.Recipe{Owner: rec.user(), From: req.From, LayerBytes: s.BuildLayerBytes}
	rec.mu.Lock()
	rec.rec.Image = req.From
	rec.mu.Unlock()
	var err error
	if req.From == "" {
		return rc, invalid(`"from" is required: the image the build starts from`)
	}
	if rc.Name, err = images.ParseName(req.Name); err != nil || req.Name == "" {
		return rc, invalid(fmt.Sprintf(`"name" %q: a name[:tag] for the new image is required`, req.Name))
	}
	if len(req.Run) == 0 || len(req.Run) > maxBuildSteps {
		return rc, invalid(fmt.Sprintf(`"run" must have 1 to %d steps`, maxBuildSteps))
	}
	for i, step := range req.Run {
		if len(step) == 0 || step[0] == "" || strings.ContainsRune(strings.Join(step, ""), 0) {
			return rc, invalid(fmt.Sprintf(`"run"[%d]: a step is a non-empty argv whose first element is not empty, without NUL`, i))
		}
	}
	rc.Steps = req.Run
	if err := checkEnv(req.Env); err != nil {
		return rc, err
	}
	rc.Env = envList(req.Env)
	p, err := limits.FromAPI(req.Limits, "limits")
	if err != nil {
		return rc, err
	}
	if rc.Limits, err = limits.Resolve(p, s.BuildLimits, s.BuildLimits, "limits"); err != nil {
		return rc, err
	}
	rc.Network, err = s.network(rec, req.Network)
	return rc, err
}

// buildEvents streams a build (build.Events).
type buildEvents struct {
	s        *eventStream
	out, err io.Writer
	flush    func()
}

func (b *buildEvents) Step(n int, cmd []string) {
	b.s.event(struct {
		Type string   `json:"type"`
		Step int      `json:"step"`
		Cmd  []string `json:"cmd"`
	}{"step", n, cmd})
}

func (b *buildEvents) Output(stderr bool, p []byte) {
	if stderr {
		b.err.Write(p)
	} else {
		b.out.Write(p)
	}
}

// StepDone sends the step's result without its output, which went out
// as it was read.
func (b *buildEvents) StepDone(n int, r *api.Result) {
	b.flush()
	res := *r
	res.Stdout, res.Stderr, res.StdoutEncoding, res.StderrEncoding = "", "", "", ""
	b.s.event(struct {
		Type   string      `json:"type"`
		Step   int         `json:"step"`
		Result *api.Result `json:"result"`
	}{"step_end", n, &res})
}
