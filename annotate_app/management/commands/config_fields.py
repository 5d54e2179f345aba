from django.core.management.base import BaseCommand

from rm_worker.training.config import RewardModelConfig
from rm_worker.training.generation import GenerationConfig
from rm_worker.training.ppo_config import PPOConfig
from rm_worker.training.schema import fields_markdown

CONFIGS = {"reward": RewardModelConfig, "ppo": PPOConfig, "generation": GenerationConfig}


class Command(BaseCommand):
    help = (
        "Print a run config's fields as a Markdown table (type, default, allowed values, help), generated "
        "from its schema: what --set, the API's config and the dashboard forms accept."
    )

    def add_arguments(self, parser):
        parser.add_argument("config", choices=sorted(CONFIGS), help="reward: reward-model runs; ppo: PPO runs; "
                            "generation: generations")

    def handle(self, *args, **options):
        self.stdout.write(fields_markdown(CONFIGS[options["config"]]), ending="")
