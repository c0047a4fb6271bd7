package main

import (
	"cmp"
	"slices"
	"strings"
)

// -runs R repeats every row R times; the tables give the median and, when
// R > 1, each run in the order they ran, so that a reader sees the spread
// (the machine is shared, see BENCHMARKS.md).

// median returns the median of xs: the middle value, or for an even count
// the lower of the two middle ones (a value that was measured).
func median[T cmp.Ordered](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[(len(s)-1)/2]
}

// medianRun returns the run whose key is the median of the runs' keys, so
// that a row can print one real run's numbers together.
func medianRun[T any](runs []T, key func(T) float64) T {
	keys := make([]float64, len(runs))
	for i, r := range runs {
		keys[i] = key(r)
	}
	m := median(keys)
	return runs[slices.Index(keys, m)]
}

// eachRun formats the runs' values for the "each run" column, or returns
// "" for a single run (no such column).
func eachRun[T any](runs []T, format func(T) string) string {
	if len(runs) < 2 {
		return ""
	}
	s := make([]string, len(runs))
	for i, r := range runs {
		s[i] = format(r)
	}
	return strings.Join(s, " / ")
}

// runsHeader and runsCell add the "each run" column to a table when there
// is more than one run.
func runsHeader(runs int, what string) (header, rule string) {
	if runs < 2 {
		return "", ""
	}
	return " each run (" + what + ") |", " --- |"
}

func runsCell(each string) string {
	if each == "" {
		return ""
	}
	return " " + each + " |"
}
