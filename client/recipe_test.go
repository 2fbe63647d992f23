package client

import (
	"fmt"
	"strings"
	"testing"

	"github.com/sandboxd/sandboxd/api"
)

func TestParseRecipe(t *testing.T) {
	for _, tc := range []struct {
		name, text, want, err string
	}{
		{"full", "name = \"a:1\"\nfrom = \"busybox\"\nrun = [[\"sh\", \"-c\", \"echo hi\"]]\n[env]\nK = \"v\"\n[network]\nallow = [\"x.org\"]\n[limits]\nmemory_bytes = 268435456\n",
			"a:1 busybox [[sh -c echo hi]] map[K:v] [x.org] 268435456", ""},
		{"unknown key", "name = \"a\"\nfrom = \"b\"\nrunn = []\n", "", `unknown field "runn"`},
		{"not TOML", "name = \n", "", "recipe:"},
		{"wrong type", "name = 3\n", "", "cannot unmarshal number"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ParseRecipe([]byte(tc.text))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Join([]string{r.Name, r.From, fmtSteps(r.Run), fmtMap(r.Env), fmtAllow(r), fmtMem(r)}, " ")
			if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func fmtSteps(s [][]string) string      { return fmt.Sprint(s) }
func fmtMap(m map[string]string) string { return fmt.Sprint(m) }
func fmtAllow(r *api.BuildRequest) string {
	if r.Network == nil {
		return "-"
	}
	return fmt.Sprint(r.Network.Allow)
}
func fmtMem(r *api.BuildRequest) string {
	if r.Limits == nil || r.Limits.MemoryBytes == nil {
		return "-"
	}
	return fmt.Sprint(*r.Limits.MemoryBytes)
}
