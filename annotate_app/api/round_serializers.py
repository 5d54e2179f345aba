"""API shapes of the loop's rounds."""

from rest_framework import serializers

from ..models import Round


class RoundSerializer(serializers.ModelSerializer):
    eval_accuracy = serializers.DictField(
        child=serializers.FloatField(allow_null=True),
        help_text="The reward run's pairwise accuracy per objective on the fixed evaluation set (the pairs round 1's "
                  "reward run held out); {} until measured, null for an objective with no labeled pair there.")

    class Meta:
        model = Round
        fields = ["id", "number", "trigger", "snapshot", "reward_run", "policy_run", "generation", "eval_accuracy",
                  "eval_pairs", "note", "created_at"]
