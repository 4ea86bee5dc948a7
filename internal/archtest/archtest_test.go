package archtest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// packages returns every folder of the module that holds Go files, keyed
// by its path relative to the module root, with its non-test files parsed.
func packages(t *testing.T) map[string][]*ast.File {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found at %s: %v", root, err)
	}
	out := map[string][]*ast.File{}
	fset := token.NewFileSet()
	err = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "bin") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.PackageClauseOnly|parser.ParseComments)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		out[rel] = append(out[rel], f)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestEveryPackageDocumentsItselfOnce(t *testing.T) {
	t.Parallel()
	for dir, files := range packages(t) {
		var docs []string
		for _, f := range files {
			if f.Doc != nil {
				docs = append(docs, f.Doc.Text())
			}
		}
		if len(docs) != 1 {
			t.Errorf("%s: %d package doc comments, want exactly 1", dir, len(docs))
			continue
		}
		name := files[0].Name.Name
		want := "Package " + name + " "
		if name == "main" {
			want = "Command " + filepath.Base(dir) + " "
		}
		if !strings.HasPrefix(docs[0], want) {
			t.Errorf("%s: package doc starts %q, want it to start %q", dir, firstLine(docs[0]), want)
		}
	}
}

func TestNoGrabBagPackages(t *testing.T) {
	t.Parallel()
	for dir := range packages(t) {
		switch filepath.Base(dir) {
		case "util", "utils", "common", "helpers", "misc", "shared":
			t.Errorf("%s: name packages for what they hold", dir)
		}
	}
}

// TestProgramsStayThin checks that the main packages of the three
// programs of the contract only hand over to their package.
func TestProgramsStayThin(t *testing.T) {
	t.Parallel()
	for _, prog := range []string{"gateway", "worker", "rebalance"} {
		data, err := os.ReadFile(filepath.Join("../../cmd", prog, "main.go"))
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(string(data), "\n"); n > 30 {
			t.Errorf("cmd/%s/main.go has %d lines; keep main thin and put the program in package %s", prog, n, prog)
		}
	}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}
