"""Check a `snakemake --profile slurm` run: every job went through sbatch and completed.

Reads the Snakemake log for "submitted with SLURM jobid N" lines, asks the scheduler
(`scontrol show job N`, kept for MinJobAge) for each job's state, rule (job name/comment) and
memory, and checks that the fault-injected rule failed once and completed on attempt 2 with more
memory. Prints a table of the jobs.
"""

import argparse
import re
import subprocess
import sys

parser = argparse.ArgumentParser()
parser.add_argument("log")
parser.add_argument("--fault-rule", default=None)
args = parser.parse_args()

text = open(args.log).read()
ids = [int(m) for m in re.findall(r"submitted with SLURM jobid (\d+)", text)]
if not ids:
    sys.exit(f"{args.log}: no job was submitted through sbatch")


def job_info(jobid: int) -> dict:
    out = subprocess.run(["scontrol", "-o", "show", "job", str(jobid)], capture_output=True, text=True, timeout=30).stdout
    return dict(kv.split("=", 1) for kv in out.split() if "=" in kv)


rows, problems = [], []
for jid in ids:
    info = job_info(jid)
    if not info:
        problems.append(f"slurm job {jid}: unknown to the scheduler (purged? raise MinJobAge)")
        continue
    comment = info.get("Comment", "")
    rule = re.search(r"rule_([A-Za-z0-9_]+)", comment or info.get("JobName", ""))
    rows.append((jid, rule.group(1) if rule else comment, info.get("JobState"), info.get("MinMemoryNode", info.get("MinMemoryCPU", "?"))))

print(f"{'slurm id':>8}  {'rule':<24} {'state':<10} memory")
for jid, rule, state, mem in rows:
    print(f"{jid:>8}  {rule:<24} {state:<10} {mem}")

for jid, rule, state, mem in rows:
    if state != "COMPLETED" and not (rule == args.fault_rule and state == "FAILED"):
        problems.append(f"slurm job {jid} ({rule}): state {state}")

if args.fault_rule:
    tries = [(jid, state, mem) for jid, rule, state, mem in rows if rule == args.fault_rule]
    states = [s for _, s, _ in tries]
    if states[:1] != ["FAILED"] or states[-1:] != ["COMPLETED"] or len(tries) != 2:
        problems.append(f"fault-injected rule {args.fault_rule}: expected FAILED then COMPLETED, got {states}")
    else:
        mem = [int(re.sub(r"\D", "", m) or 0) for _, _, m in tries]
        if not mem[1] > mem[0]:
            problems.append(f"fault-injected rule {args.fault_rule}: attempt 2 asked for {mem[1]} MB, not more than {mem[0]} MB")
        else:
            print(f"retry: {args.fault_rule} failed on attempt 1 ({mem[0]} MB) and completed on attempt 2 ({mem[1]} MB)")

if "steps (100%) done" not in text:
    problems.append("the Snakemake log does not end with all steps done")
if problems:
    sys.exit("\n".join(problems))
print(f"{len(rows)} Slurm jobs, all submitted with sbatch and completed")
