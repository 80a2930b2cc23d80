// dockerfile-check reads a Dockerfile with BuildKit's own parser and linter (the code behind
// `docker build --check`), without Docker: a syntax error, an instruction BuildKit would refuse,
// or a lint warning fails it. Then it names the stages, so a missing build target shows.
//
//	dockerfile-check deploy/docker/Dockerfile [STAGE ...]
package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: dockerfile-check DOCKERFILE [STAGE ...]")
		os.Exit(64)
	}
	path := os.Args[1]
	file, err := os.Open(path)
	if err != nil {
		fail(path, err.Error())
	}
	defer file.Close()
	result, err := parser.Parse(file)
	if err != nil {
		fail(path, err.Error())
	}
	var problems []string
	for _, warning := range result.Warnings {
		problems = append(problems, fmt.Sprintf("line %d: %s", warning.Location.Start.Line, warning.Short))
	}
	lint := linter.New(&linter.Config{
		Warn: func(rule, description, url, message string, location []parser.Range) {
			line := 0
			if len(location) > 0 {
				line = location[0].Start.Line
			}
			problems = append(problems, fmt.Sprintf("line %d: %s: %s", line, rule, message))
		},
	})
	stages, _, err := instructions.Parse(result.AST, lint)
	if err != nil {
		fail(path, err.Error())
	}
	names := map[string]bool{}
	var listed []string
	for _, stage := range stages {
		if stage.Name != "" {
			names[stage.Name] = true
			listed = append(listed, stage.Name)
		}
	}
	for _, wanted := range os.Args[2:] {
		if !names[wanted] {
			problems = append(problems, fmt.Sprintf("no stage %q", wanted))
		}
	}
	if len(problems) > 0 {
		fail(path, strings.Join(problems, "\n  "))
	}
	fmt.Printf("%s: valid, stages %s\n", path, strings.Join(listed, ", "))
}

func fail(path, message string) {
	fmt.Fprintf(os.Stderr, "%s:\n  %s\n", path, message)
	os.Exit(1)
}
