package compat

import (
	"context"
	"encoding/base64"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/errdefs"
)

// Judge0 serves Judge0 CE's API: languages, statuses, submissions with
// or without wait, their tokens, and batches (docs/compat.md, "Judge0").
type Judge0 struct {
	Options
	Backend Backend
	store   *store
}

// NewJudge0 returns the Judge0 handlers, with an empty store of
// submissions.
func NewJudge0(o Options, b Backend) *Judge0 {
	return &Judge0{Options: o, Backend: b, store: newStore(o.Results)}
}

// judge0Language is one of Judge0's language ids and the catalog language
// it stands for. Judge0 has an id per compiler version; sandboxd has one
// version per language, so each takes the id of Judge0 CE's latest.
type judge0Language struct {
	id      int
	name    string // the catalog's
	display string // Judge0's name, without the version
}

// judge0Languages is the table of docs/compat.md.
var judge0Languages = []judge0Language{
	{46, "bash", "Bash"}, {50, "c", "C (GCC"}, {51, "csharp", "C# (Mono"}, {54, "cpp", "C++ (GCC"},
	{60, "go", "Go"}, {62, "java", "Java (OpenJDK"}, {63, "javascript", "JavaScript (Node.js"},
	{64, "lua", "Lua"}, {68, "php", "PHP"}, {71, "python", "Python"}, {72, "ruby", "Ruby"}, {73, "rust", "Rust"},
	// Judge0's other languages with a catalog counterpart. Where the
	// toolchain differs from Judge0's (D: GDC for DMD, Prolog: SWI for GNU,
	// Objective-C: GCC for Clang), the name says which.
	{45, "assembly", "Assembly (NASM"}, {55, "lisp", "Common Lisp (SBCL"}, {56, "d", "D (GDC"},
	{57, "elixir", "Elixir"}, {58, "erlang", "Erlang (OTP"}, {59, "fortran", "Fortran (GFortran"},
	{61, "haskell", "Haskell (GHC"}, {65, "ocaml", "OCaml"}, {67, "pascal", "Pascal (FPC"},
	{69, "prolog", "Prolog (SWI-Prolog"}, {74, "typescript", "TypeScript"}, {77, "cobol", "COBOL (GnuCOBOL"},
	{78, "kotlin", "Kotlin"}, {79, "objective-c", "Objective-C (GCC"}, {80, "r", "R"}, {81, "scala", "Scala"},
	{82, "sql", "SQL (SQLite"}, {85, "perl", "Perl"}, {86, "clojure", "Clojure"}, {88, "groovy", "Groovy"},
}

// judge0Name is Judge0's display name: "Python (3.11.2)", "C (GCC 12.2.0)".
func (l judge0Language) judge0Name(version string) string {
	if strings.Contains(l.display, "(") {
		return l.display + " " + version + ")"
	}
	return l.display + " (" + version + ")"
}

// available are the table's languages the daemon has, with versions.
func (j *Judge0) available(ctx context.Context) map[int]string {
	versions := map[string]string{}
	for _, l := range j.Backend.Languages(ctx) {
		if l.Available {
			versions[l.Name] = l.Version
		}
	}
	out := map[int]string{}
	for _, l := range judge0Languages {
		if v, ok := versions[l.name]; ok {
			out[l.id] = v
		}
	}
	return out
}

func judge0LanguageByID(id int) (judge0Language, bool) {
	i := slices.IndexFunc(judge0Languages, func(l judge0Language) bool { return l.id == id })
	if i < 0 {
		return judge0Language{}, false
	}
	return judge0Languages[i], true
}

// Languages is GET /languages.
func (j *Judge0) Languages(w http.ResponseWriter, r *http.Request) {
	have := j.available(r.Context())
	out := []map[string]any{}
	for _, l := range judge0Languages {
		if v, ok := have[l.id]; ok {
			out = append(out, map[string]any{"id": l.id, "name": l.judge0Name(v)})
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// Language is GET /languages/{id}.
func (j *Judge0) Language(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.Atoi(r.PathValue("id"))
	l, known := judge0LanguageByID(id)
	v, ok := j.available(r.Context())[id]
	if !known || !ok {
		j.Backend.Fail(w, r, errdefs.NotFoundf("no language with id %q", r.PathValue("id")), judge0Error)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": l.id, "name": l.judge0Name(v), "is_archived": false, "source_file": j.mainFile(l.name)})
}

// Statuses is GET /statuses.
func (j *Judge0) Statuses(w http.ResponseWriter, r *http.Request) {
	out := make([]judge0Status, 0, len(judge0Descriptions))
	for id := 1; id <= len(judge0Descriptions); id++ {
		out = append(out, statusOf(id))
	}
	writeJSON(w, http.StatusOK, out)
}

// judge0Error is Judge0's error shape, {"error": ...}; a request it
// cannot run is 422, as Judge0's validation errors are.
func judge0Error(status int, message string) (int, any) {
	if status == http.StatusBadRequest {
		status = http.StatusUnprocessableEntity
	}
	return status, map[string]string{"error": message}
}

// judge0Query is a request's query parameters.
type judge0Query struct {
	base64, wait bool
	fields       []string // nil: Judge0's default set; ["*"]: all
}

func parseJudge0Query(r *http.Request) (judge0Query, error) {
	q := r.URL.Query()
	var out judge0Query
	for _, p := range []struct {
		name string
		dst  *bool
	}{{"base64_encoded", &out.base64}, {"wait", &out.wait}} {
		if v := q.Get(p.name); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return out, errdefs.Invalidf("%s=%q: expected true or false", p.name, v)
			}
			*p.dst = b
		}
	}
	if f := q.Get("fields"); f != "" {
		out.fields = strings.Split(f, ",")
	}
	return out, nil
}

// Submit is POST /submissions: with wait=true, the submission's result
// (201); without, its token (201), the run going on in the background.
func (j *Judge0) Submit(w http.ResponseWriter, r *http.Request) {
	q, err := parseJudge0Query(r)
	var sub *judge0Submission
	if err == nil {
		sub, err = decodeBody[judge0Submission](w, r, j.MaxBody)
	}
	var req *api.ExecuteRequest
	if err == nil {
		req, err = j.translate(r.Context(), sub, q.base64)
	}
	if err != nil {
		j.Backend.Fail(w, r, err, judge0Error)
		return
	}
	if !q.wait {
		token, err := j.start(r, req)
		if err != nil {
			j.Backend.Fail(w, r, err, judge0Error)
			return
		}
		writeJSON(w, http.StatusCreated, map[string]string{"token": token})
		return
	}
	res, err := j.runNow(r, req)
	if err == nil {
		var body map[string]any
		if body, err = res.render(q); err == nil {
			writeJSON(w, http.StatusCreated, body)
			return
		}
	}
	j.Backend.Fail(w, r, err, judge0Error)
}

// runNow runs a submission while its client waits, and keeps its result
// for its token too (as Judge0 does).
func (j *Judge0) runNow(r *http.Request, req *api.ExecuteRequest) (*judge0Result, error) {
	token, err := j.store.add(j.Backend.Caller(r))
	if err != nil {
		return nil, err
	}
	run, err := j.Backend.Admit(r)
	if err != nil {
		j.store.remove(token)
		return nil, err
	}
	resp, err := run(r.Context(), req)
	if err != nil {
		j.store.remove(token)
		return nil, err
	}
	res := resultOf(resp)
	res.Token = token
	j.store.finish(token, res)
	return res, nil
}

// start admits a submission and runs it in the background; its result
// goes to the store under the returned token. The run's context is the
// request's without its end: the client is gone by then, and the run is
// bounded by its own limits.
func (j *Judge0) start(r *http.Request, req *api.ExecuteRequest) (string, error) {
	token, err := j.store.add(j.Backend.Caller(r))
	if err != nil {
		return "", err
	}
	run, err := j.Backend.Admit(r)
	if err != nil {
		j.store.remove(token)
		return "", err
	}
	ctx := context.WithoutCancel(r.Context())
	go func() {
		resp, err := run(ctx, req)
		res := &judge0Result{Status: statusOf(judge0InternalError)}
		if err == nil {
			res = resultOf(resp)
		} else {
			res.Message = ptr(err.Error())
		}
		res.Token = token
		j.store.finish(token, res)
	}()
	return token, nil
}

// Get is GET /submissions/{token}.
func (j *Judge0) Get(w http.ResponseWriter, r *http.Request) {
	q, err := parseJudge0Query(r)
	if err != nil {
		j.Backend.Fail(w, r, err, judge0Error)
		return
	}
	body, err := j.lookup(r, r.PathValue("token"), q)
	if err != nil {
		j.Backend.Fail(w, r, err, judge0Error)
		return
	}
	writeJSON(w, http.StatusOK, body)
}

// lookup renders the caller's submission of token: In Queue while it
// runs.
func (j *Judge0) lookup(r *http.Request, token string, q judge0Query) (map[string]any, error) {
	res, ok := j.store.get(j.Backend.Caller(r), token)
	if !ok {
		return nil, errdefs.NotFoundf("no submission with token %q (it never existed, was another caller's, or was dropped after %s)", token, j.Results.Keep)
	}
	if res == nil {
		res = &judge0Result{Token: token, Status: statusOf(judge0Processing)}
	}
	return res.render(q)
}

// maxBatch is Judge0's default bound on a batch.
const maxBatch = 20

// SubmitBatch is POST /submissions/batch: every submission started in the
// background; the answer has a token, or an error, for each, in order.
func (j *Judge0) SubmitBatch(w http.ResponseWriter, r *http.Request) {
	q, err := parseJudge0Query(r)
	var batch *struct {
		Submissions []judge0Submission `json:"submissions"`
	}
	if err == nil {
		batch, err = decodeBody[struct {
			Submissions []judge0Submission `json:"submissions"`
		}](w, r, j.MaxBody)
	}
	if err == nil && (len(batch.Submissions) == 0 || len(batch.Submissions) > maxBatch) {
		err = errdefs.Invalidf("a batch has between 1 and %d submissions", maxBatch)
	}
	if err != nil {
		j.Backend.Fail(w, r, err, judge0Error)
		return
	}
	out := make([]map[string]string, len(batch.Submissions))
	for i := range batch.Submissions {
		req, err := j.translate(r.Context(), &batch.Submissions[i], q.base64)
		var token string
		if err == nil {
			token, err = j.start(r, req)
		}
		if err != nil {
			out[i] = map[string]string{"error": err.Error()}
			continue
		}
		out[i] = map[string]string{"token": token}
	}
	writeJSON(w, http.StatusCreated, out)
}

// GetBatch is GET /submissions/batch?tokens=a,b,c.
func (j *Judge0) GetBatch(w http.ResponseWriter, r *http.Request) {
	q, err := parseJudge0Query(r)
	tokens := strings.Split(r.URL.Query().Get("tokens"), ",")
	if err == nil && (r.URL.Query().Get("tokens") == "" || len(tokens) > maxBatch) {
		err = errdefs.Invalidf("tokens: between 1 and %d tokens, separated by commas", maxBatch)
	}
	out := make([]map[string]any, len(tokens))
	for i := 0; err == nil && i < len(tokens); i++ {
		out[i], err = j.lookup(r, strings.TrimSpace(tokens[i]), q)
	}
	if err != nil {
		j.Backend.Fail(w, r, err, judge0Error)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"submissions": out})
}

func ptr[T any](v T) *T { return &v }

// b64 decodes a base64 field of a request made with base64_encoded=true.
func b64(field, v string) (string, error) {
	b, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return "", errdefs.Invalidf("%s is not valid base64 (the request has base64_encoded=true)", field)
	}
	return string(b), nil
}
