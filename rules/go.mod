module waooaw.dev/governance/rules

go 1.26.0
