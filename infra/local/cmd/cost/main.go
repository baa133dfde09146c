// Command cost prints the platform's monthly bill by service for three workloads: idle, the
// seed's (100,000 webhooks a day, 20 agent creations and 200 Governor decisions a month) and
// ten times the seed's, from the units the local stack measured (infra/local/cost/units.json)
// and the prices of rules/cloud_prices.yaml. It needs nothing running: `make cost`.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"waooaw.dev/governance/infra/local/cost"
	"waooaw.dev/governance/infra/local/infraspec"
	"waooaw.dev/governance/rules"
	sharedrules "waooaw.dev/governance/shared/rules"
)

func main() {
	unitsPath := flag.String("units", "", "a units.json to bill instead of the recorded one")
	flag.Parse()
	if err := run(os.Stdout, *unitsPath); err != nil {
		fmt.Fprintln(os.Stderr, "cost:", err)
		os.Exit(1)
	}
}

func run(out io.Writer, unitsPath string) error {
	units, err := cost.Recorded()
	if unitsPath != "" {
		b, rerr := os.ReadFile(unitsPath)
		if rerr != nil {
			return rerr
		}
		units, err = cost.ParseUnits(b)
	}
	if err != nil {
		return err
	}
	prices, err := cost.LoadPrices(rules.FS)
	if err != nil {
		return err
	}
	spec, _, err := infraspec.LoadRepo()
	if err != nil {
		return err
	}
	set, err := sharedrules.Load(rules.FS)
	if err != nil {
		return fmt.Errorf("load rules: %w", err)
	}
	capUSD, err := monthlyCap(set)
	if err != nil {
		return err
	}
	var bills []cost.Bill
	for _, w := range []cost.Workload{cost.Idle, cost.Seed, cost.Ten} {
		b, err := cost.Month(units, prices, spec, w)
		if err != nil {
			return err
		}
		bills = append(bills, b)
	}
	fmt.Fprintf(out, "Units measured %s on the local stack (%s); prices of rules/cloud_prices.yaml, priced %s, region asia-south1.\n",
		units.MeasuredOn, units.Command, prices["functions.requests"].PricedOn)
	fmt.Fprintf(out, "A month is %d days; AI tokens are 0: reviews run on the decision tables while no AI key is configured.\n\n", cost.DaysPerMonth)
	if err := cost.Print(out, bills); err != nil {
		return err
	}
	seed := bills[1]
	fmt.Fprintf(out, "\nSeed workload: $%.2f a month, %.2f of the seed's own $%d average (its estimate $%d-%d); the cap is $%.0f.\n",
		seed.Total(), seed.Total()/cost.SeedEstimateUSD, cost.SeedEstimateUSD, cost.SeedEstimateLowUSD, cost.SeedEstimateHighUSD, capUSD)
	if err := seed.Within(capUSD); err != nil {
		return err
	}
	return nil
}

// monthlyCap is budget_thresholds' platform_cap_usd, the cap the budget guard enforces.
func monthlyCap(set *sharedrules.Set) (float64, error) {
	t, ok := set.Table("budget_thresholds")
	if !ok {
		return 0, errors.New("rules: no budget_thresholds table")
	}
	v, ok := t.Params["platform_cap_usd"].(float64)
	if !ok || v <= 0 {
		return 0, fmt.Errorf("budget_thresholds: platform_cap_usd %v: want a positive number", t.Params["platform_cap_usd"])
	}
	return v, nil
}
