package languages_test

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
)

// TestPythonSci: the python-sci language imports numpy, scipy, pandas,
// matplotlib, sympy and scikit-learn with its default limits, and a plot
// saved to /work comes back as a PNG through collect.
func TestPythonSci(t *testing.T) {
	d := startWithImages(t, "python-sci")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	prog := `import numpy as np, pandas as pd, scipy.stats, sympy, sklearn.linear_model
import matplotlib.pyplot as plt
x = np.arange(10.0)
df = pd.DataFrame({"x": x, "y": 2 * x + 1})
m = sklearn.linear_model.LinearRegression().fit(df[["x"]], df["y"])
print(round(m.coef_[0], 6), round(m.intercept_, 6), sympy.factor("x**2 - 1"), round(scipy.stats.norm.cdf(0), 3))
plt.plot(df.x, df.y)
plt.savefig("/work/plot.png")
`
	r, err := d.Client.ExecuteLanguage(ctx, &api.ExecuteRequest{Language: "python-sci",
		Files: []api.File{{Name: "main.py", Content: prog}}, Collect: []string{"plot.png"}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != "ok" || r.Run == nil || r.Run.Stdout != "2.0 1.0 (x - 1)*(x + 1) 0.5\n" {
		t.Fatalf("status %s, run %+v", r.Status, r.Run)
	}
	if len(r.Run.Files) != 1 || r.Run.Files[0].Encoding != "base64" {
		t.Fatalf("collected %+v", r.Run.Files)
	}
	png, err := base64.StdEncoding.DecodeString(r.Run.Files[0].Content)
	if err != nil || !strings.HasPrefix(string(png), "\x89PNG\r\n\x1a\n") || len(png) < 1000 {
		t.Errorf("plot.png: %d bytes, %.8q (%v)", len(png), png, err)
	}
	t.Logf("imports, a fit and a plot: %.0f ms wall, %.0f ms CPU, %d MiB peak", r.Run.WallTimeMS, r.Run.CPUTimeMS, r.Run.MemoryPeakBytes>>20)
}
