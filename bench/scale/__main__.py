"""``python -m bench.scale``: the scale model's tables (Markdown), and with ``--emulator`` the
throttling runs and the per-item ceiling checked on the emulator."""

from __future__ import annotations

import argparse

from bench.scale.model import AWS_LIMITS, Load, evaluate


def fmt(value: float) -> str:
    return "never" if value == float("inf") else "not binding" if value > 1e7 else f"{value:,.0f}"


def limits_table() -> str:
    lines = ["| figure | value | source |", "|---|---|---|"]
    for limit in AWS_LIMITS.values():
        lines.append(f"| {limit.name} | {limit.value:,.0f} {limit.unit} | <{limit.source}> |")
    return "\n".join(lines)


def ceilings_table(loads: list[tuple[str, Load]]) -> str:
    lines = [
        "| service | reads ceiling | writes ceiling | concurrency ceiling | binds first | ceiling (calls/s) |",
        "|---|---|---|---|---|---|",
    ]
    for label, load in loads:
        verdict = evaluate(load)
        reads, writes, concurrency = (c.calls_per_second for c in verdict.ceilings)
        lines.append(
            f"| {label} | {fmt(reads)} | {fmt(writes)} | {fmt(concurrency)} | {verdict.binding.limit} "
            f"| {fmt(verdict.ceiling)} |"
        )
    return "\n".join(lines)


def scenarios(concurrency: float = 1000) -> list[tuple[str, Load]]:
    rows: list[tuple[str, Load]] = []
    for k in (1, 8):
        for latency in (0.02, 0.1, 0.5):
            rows.append(
                (
                    f"answers in {latency * 1000:.0f} ms, K={k}",
                    Load(calls_per_second=1, latency_seconds=latency, read_shards=k, concurrency=concurrency),
                )
            )
        hang = Load(calls_per_second=1, failing=True, read_shards=k, concurrency=concurrency)
        rows.append((f"hangs (3 x 3 s, waits 1+2 s), K={k}", hang))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__)
    parser.add_argument("--concurrency", type=float, default=AWS_LIMITS["express_concurrency"].value)
    parser.add_argument("--emulator", action="store_true", help="also measure the read ceiling on the emulator")
    parser.add_argument("--reads-per-second", type=float, default=1.0, help="the emulator's per-item read limit")
    parser.add_argument("--callers", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    print("## The AWS figures\n")
    print(limits_table())
    print(f"\n## Ceilings per service, Express concurrency {args.concurrency:,.0f}\n")
    print(ceilings_table(scenarios(args.concurrency)))
    print("\n## Ceilings per service, Express concurrency not binding (raised)\n")
    print(ceilings_table(scenarios(1e9)))
    if args.emulator:
        from bench.scale.ceiling import measure, report

        runs = [
            measure(k, reads_per_second=args.reads_per_second, callers=args.callers, seconds=args.seconds)
            for k in (1, 8)
        ]
        print(f"\n## On the emulator: {args.callers} callers for {args.seconds:g} s, per-item read limit\n")
        print(report(runs))
        for run in runs:
            print(f"\nK={run.read_shards}: reads served by key: {run.served_by_key}")


if __name__ == "__main__":
    main()
