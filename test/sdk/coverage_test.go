package sdk_test

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/sandboxd/sandboxd/client"
)

// TestClientsCoverOpenAPI: each client's README has an "API coverage"
// table with one row per endpoint of api/openapi.yaml, no more and none
// missing, and every row names methods the client has, or says "not
// covered:" and why.
func TestClientsCoverOpenAPI(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromFile("../../api/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var endpoints []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			endpoints = append(endpoints, method+" "+path)
		}
	}
	if len(endpoints) < 20 {
		t.Fatalf("api/openapi.yaml gives %d endpoints", len(endpoints))
	}
	clients := []struct {
		readme string
		has    func(class, method string) bool
	}{
		{"../../client/README.md", goHas},
		{"../../sdk/python/README.md", sourceHas("../../sdk/python/sandboxd", ".py", `(?m)^class (\w+)\b`, `(?m)^\s+def %s\(`)},
		{"../../sdk/typescript/README.md", sourceHas("../../sdk/typescript/src", ".ts", `(?m)^export class (\w+)\b`, `(?m)^\s+(?:async\s+)?\*?%s(?:<[^>]*>)?\(`)},
	}
	for _, c := range clients {
		t.Run(filepath.Base(filepath.Dir(c.readme)), func(t *testing.T) {
			rows := coverageTable(t, c.readme)
			for _, e := range endpoints {
				if _, ok := rows[e]; !ok {
					t.Errorf("%s: no row for %s", c.readme, e)
				}
			}
			for e, cell := range rows {
				if !slices.Contains(endpoints, e) {
					t.Errorf("%s: row %s is not in api/openapi.yaml", c.readme, e)
				}
				checkCell(t, c.readme, e, cell, c.has)
			}
		})
	}
}

var (
	rowRe    = regexp.MustCompile("^\\| `(GET|POST|PUT|DELETE|PATCH) (/[^`]*)` \\| (.*) \\|$")
	methodRe = regexp.MustCompile("`(\\w+)\\.(\\w+)(?:\\(\\))?`")
)

// coverageTable reads the rows of the README's "## API coverage" table:
// endpoint → its method cell.
func coverageTable(t *testing.T, readme string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(data), "\n## API coverage\n")
	if !ok {
		t.Fatalf("%s has no \"## API coverage\" section", readme)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	rows := map[string]string{}
	for _, line := range strings.Split(section, "\n") {
		m := rowRe.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		e := m[1] + " " + m[2]
		if _, dup := rows[e]; dup {
			t.Errorf("%s: two rows for %s", readme, e)
		}
		rows[e] = m[3]
	}
	return rows
}

// checkCell: a cell names at least one method, each one the client has,
// or says the endpoint is not covered and why.
func checkCell(t *testing.T, readme, endpoint, cell string, has func(class, method string) bool) {
	t.Helper()
	refs := methodRe.FindAllStringSubmatch(cell, -1)
	if strings.HasPrefix(cell, "not covered: ") {
		if len(strings.TrimPrefix(cell, "not covered: ")) < 20 {
			t.Errorf("%s: %s is not covered without a reason", readme, endpoint)
		}
		return
	}
	if len(refs) == 0 {
		t.Errorf("%s: %s names no method and does not say \"not covered: \"", readme, endpoint)
	}
	for _, r := range refs {
		if !has(r[1], r[2]) {
			t.Errorf("%s: %s names %s.%s, which the client does not have", readme, endpoint, r[1], r[2])
		}
	}
}

// goHas reports whether the Go client's type class has the method.
func goHas(class, method string) bool {
	types := map[string]reflect.Type{
		"Client":      reflect.TypeOf((*client.Client)(nil)),
		"Interactive": reflect.TypeOf((*client.Interactive)(nil)),
	}
	typ, ok := types[class]
	if !ok {
		return false
	}
	_, ok = typ.MethodByName(method)
	return ok
}

// sourceHas returns a check that a class of the SDK's sources (files of
// ext in dir) defines a method: the class's text runs from its
// declaration (classRe) to the next one, and defines the method when
// methodRe (a format taking the method's name) matches in it.
func sourceHas(dir, ext, classRe, methodRe string) func(class, method string) bool {
	classes := map[string]string{}
	files, _ := filepath.Glob(filepath.Join(dir, "*"+ext))
	re := regexp.MustCompile(classRe)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		src := string(data)
		locs := re.FindAllStringSubmatchIndex(src, -1)
		for i, l := range locs {
			end := len(src)
			if i+1 < len(locs) {
				end = locs[i+1][0]
			}
			classes[src[l[2]:l[3]]] = src[l[0]:end]
		}
	}
	return func(class, method string) bool {
		body, ok := classes[class]
		return ok && regexp.MustCompile(strings.ReplaceAll(methodRe, "%s", regexp.QuoteMeta(method))).MatchString(body)
	}
}
