"""``python -m bench.scale``: the scale model's tables (Markdown), and with ``--emulator`` the
throttling runs and the per-item ceiling checked on the emulator."""

from __future__ import annotations

import argparse

from bench.scale.model import AWS_LIMITS, FAILING_ITEM_BYTES, Load, evaluate


def fmt(value: float) -> str:
    return "never" if value == float("inf") else "not binding" if value > 1e7 else f"{value:,.0f}"


def limits_table() -> str:
    lines = ["| figure | value | in the documentation's words | source |", "|---|---|---|---|"]
    for limit in AWS_LIMITS.values():
        value = "none documented" if not limit.value else f"{limit.value:,.0f} {limit.unit}"
        lines.append(f'| {limit.name} | {value} | "{limit.quote}" | <{limit.source}> |')
    return "\n".join(lines)


def ceilings_table(loads: list[tuple[str, Load]]) -> str:
    lines = [
        "| service | reads ceiling | writes ceiling | Express concurrency ceiling | Lambda concurrency ceiling "
        "| binds first | ceiling (calls/s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, load in loads:
        verdict = evaluate(load)
        cells = " | ".join(fmt(c.calls_per_second) for c in verdict.ceilings)
        lines.append(f"| {label} | {cells} | {verdict.binding.limit} | {fmt(verdict.ceiling)} |")
    return "\n".join(lines)


def scenarios(concurrency: float, lambda_concurrency: float) -> list[tuple[str, Load]]:
    rows: list[tuple[str, Load]] = []
    for k in (1, 8):
        for latency in (0.02, 0.1, 0.5):
            load = Load(
                calls_per_second=1,
                latency_seconds=latency,
                read_shards=k,
                concurrency=concurrency,
                lambda_concurrency=lambda_concurrency,
            )
            rows.append((f"answers in {latency * 1000:.0f} ms, K={k}", load))
        hang = Load(
            calls_per_second=1,
            failing=True,
            read_shards=k,
            concurrency=concurrency,
            lambda_concurrency=lambda_concurrency,
        )
        rows.append((f"hangs (3 x 3 s, waits 1+2 s), K={k}", hang))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__)
    parser.add_argument(
        "--concurrency",
        type=float,
        default=None,
        help="your Region's Synchronous Express concurrency (default: the documented range's ends, 1,000 and 3,700)",
    )
    parser.add_argument("--lambda-concurrency", type=float, default=AWS_LIMITS["lambda_concurrency"].value)
    parser.add_argument("--emulator", action="store_true", help="also measure the read ceiling on the emulator")
    parser.add_argument("--reads-per-second", type=float, default=1.0, help="the emulator's per-item read limit")
    parser.add_argument("--callers", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    if args.reads_per_second <= 0 or args.callers < 1 or args.seconds <= 0:
        parser.error("--reads-per-second and --seconds must be positive, --callers at least 1")
    print("## The AWS figures\n")
    print(limits_table())
    print(f"\nA failing service's base item, worst case (ASCII): {FAILING_ITEM_BYTES:,} bytes.")
    for concurrency in [args.concurrency] if args.concurrency else [1000.0, 3700.0]:
        print(
            f"\n## Ceilings per service: Express concurrency {concurrency:,.0f}, "
            f"Lambda concurrency {args.lambda_concurrency:,.0f}\n"
        )
        print(ceilings_table(scenarios(concurrency, args.lambda_concurrency)))
    print("\n## Ceilings per service, both concurrency quotas raised out of the way\n")
    print(ceilings_table(scenarios(1e9, 1e9)))
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
            print(f"K={run.read_shards}: reads refused by key: {run.throttled_by_key}")


if __name__ == "__main__":
    main()
