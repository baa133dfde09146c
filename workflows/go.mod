module waooaw.dev/governance/workflows

go 1.26.0

require waooaw.dev/governance/infra/local v0.0.0

require (
	cloud.google.com/go/longrunning v1.3.0 // indirect
	cloud.google.com/go/workflows v1.22.1 // indirect
	golang.org/x/net v0.62.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
	golang.org/x/text v0.43.0 // indirect
	google.golang.org/genproto/googleapis/api v0.0.0-20261012220534-4341edf3f941 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20261012220534-4341edf3f941 // indirect
	google.golang.org/grpc v1.85.0 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
	gopkg.in/yaml.v3 v3.0.1 // indirect
)

replace (
	waooaw.dev/governance/infra/local => ../infra/local
	waooaw.dev/governance/policies => ../policies
	waooaw.dev/governance/rules => ../rules
	waooaw.dev/governance/shared => ../shared
)
