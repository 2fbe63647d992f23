// A checker in testlib's manner, written for sandboxd's docs (docs/judge.md):
// it needs no library, and a checker built on testlib.h behaves the same.
//
//   checker input output answer
//
// input is the test's stdin, output the program's stdout, answer the test's
// expected_stdout. The verdict is the exit code, the message the first line
// of stderr:
//   0 accepted, 1 wrong answer, 2 presentation error, 3 the checker failed,
//   7 partial, with "points F" first on stderr (F from 0 to 1: the fraction
//   of the test's points).
//
// This one wants one number within 1e-6 (absolute or relative) of the
// answer's. A number further off, but within 10%, earns points that fall
// linearly with the error; anything else is a wrong answer, and output that
// is not exactly one number is a presentation error.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

enum Verdict { OK = 0, WA = 1, PE = 2, FAIL = 3, POINTS = 7 };

[[noreturn]] static void verdict(Verdict v, const std::string &message) {
	std::fprintf(stderr, "%s\n", message.c_str());
	std::exit(v);
}

// Reads every whitespace-separated token of a file.
static bool tokens(const char *path, std::string &first, int &count) {
	std::ifstream in(path);
	if (!in)
		return false;
	std::string t;
	count = 0;
	while (in >> t)
		if (count++ == 0)
			first = t;
	return true;
}

static bool number(const std::string &s, double &v) {
	char *end = nullptr;
	v = std::strtod(s.c_str(), &end);
	return !s.empty() && *end == '\0' && std::isfinite(v);
}

int main(int argc, char **argv) {
	if (argc < 4)
		verdict(FAIL, "usage: checker input output answer");
	std::string want, got;
	int nwant = 0, ngot = 0;
	double a = 0, b = 0;
	if (!tokens(argv[3], want, nwant) || nwant != 1 || !number(want, a))
		verdict(FAIL, "the answer file does not hold one number");
	if (!tokens(argv[2], got, ngot) || ngot != 1 || !number(got, b))
		verdict(PE, "expected one number, found " + std::to_string(ngot) + " tokens");
	double err = std::fabs(a - b);
	double rel = err / std::fmax(std::fabs(a), 1e-300);
	if (err <= 1e-6 || rel <= 1e-6)
		verdict(OK, "ok " + got);
	if (rel < 0.1) {
		std::ostringstream m;
		m << "points " << (1 - rel * 10) << " " << got << " is " << rel * 100 << "% off";
		verdict(POINTS, m.str());
	}
	verdict(WA, "expected " + want + ", found " + got);
}
