package demo

import "testing"

func TestPlaceholder(t *testing.T) {}
