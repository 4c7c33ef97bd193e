{#
    Confidence intervals for campaign lift, in portable SQL (arithmetic, sqrt and power only).

    wilson_bound: the Wilson score interval of one proportion successes / trials.
    newcombe_difference_bound: Newcombe's hybrid score interval (Newcombe 1998, method 10) for
    the difference p1 - p2 of two independent proportions, built from the two Wilson intervals:
        lower = d - sqrt((p1 - l1)^2 + (u2 - p2)^2)
        upper = d + sqrt((u1 - p1)^2 + (p2 - l2)^2)
    It stays inside [-1, 1] and behaves at 0 % and 100 %, where the Wald interval collapses.
    z = 1.959963984540054 gives 95 %. Any bound is null when a group has no members.
#}

{% macro lift_share(successes, trials) -%}
    case
        when {{ trials }} > 0
            then cast({{ successes }} as {{ dbt.type_float() }}) / {{ trials }}
    end
{%- endmacro %}

{% macro wilson_bound(successes, trials, side, z=1.959963984540054) -%}
    {%- if side not in ('lower', 'upper') -%}
        {{ exceptions.raise_compiler_error("wilson_bound: side must be 'lower' or 'upper'") }}
    {%- endif -%}
    {%- set p = lift_share(successes, trials) -%}
    {%- set z2 = (z * z) | string -%}
    case
        when {{ trials }} > 0
            then (
                ({{ p }}) + {{ z2 }} / (2.0 * {{ trials }})
                {{ '-' if side == 'lower' else '+' }} {{ z }} * sqrt(
                    ({{ p }}) * (1 - ({{ p }})) / {{ trials }}
                    + {{ z2 }} / (4.0 * {{ trials }} * {{ trials }})
                )
            ) / (1 + {{ z2 }} / {{ trials }})
    end
{%- endmacro %}

{% macro newcombe_difference_bound(
    successes_1, trials_1, successes_2, trials_2, side, z=1.959963984540054
) -%}
    {%- if side not in ('lower', 'upper') -%}
        {{ exceptions.raise_compiler_error(
            "newcombe_difference_bound: side must be 'lower' or 'upper'") }}
    {%- endif -%}
    {%- set p1 = lift_share(successes_1, trials_1) -%}
    {%- set p2 = lift_share(successes_2, trials_2) -%}
    {%- if side == 'lower' -%}
        {%- set gap_1 = '(' ~ p1 ~ ') - (' ~ wilson_bound(successes_1, trials_1, 'lower', z) ~ ')' -%}
        {%- set gap_2 = '(' ~ wilson_bound(successes_2, trials_2, 'upper', z) ~ ') - (' ~ p2 ~ ')' -%}
    {%- else -%}
        {%- set gap_1 = '(' ~ wilson_bound(successes_1, trials_1, 'upper', z) ~ ') - (' ~ p1 ~ ')' -%}
        {%- set gap_2 = '(' ~ p2 ~ ') - (' ~ wilson_bound(successes_2, trials_2, 'lower', z) ~ ')' -%}
    {%- endif -%}
    (({{ p1 }}) - ({{ p2 }}))
    {{ '-' if side == 'lower' else '+' }} sqrt(power({{ gap_1 }}, 2) + power({{ gap_2 }}, 2))
{%- endmacro %}

{#
    The campaigns whose lift can be measured, read at compile time from the segments' YAML
    (config.meta.onramp.sequence of every seg_ model), merged with var lift_campaigns (a mapping
    campaign -> {goal, holdout_share, category}) for campaigns not declared in a segment, such as
    a retired one whose ledger rows remain. A sequence without a goal has no lift and is left out.
    Returns [{campaign, goal_type, goal_segment, holdout_share, category}] sorted by campaign.
#}
{% macro lift_campaigns() -%}
    {%- set declared = {} -%}
    {%- if execute -%}
        {%- for node in graph.nodes.values() -%}
            {%- if node.resource_type == 'model' and node.name.startswith('seg_') -%}
                {%- set meta = (node.config or {}).get('meta') or node.get('meta') or {} -%}
                {%- set sequence = (meta.get('onramp') or {}).get('sequence') -%}
                {%- if sequence -%}
                    {%- do declared.update({node.name[4:]: sequence}) -%}
                {%- endif -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {%- do declared.update(var('lift_campaigns', {}) or {}) -%}
    {%- set campaigns = [] -%}
    {%- for name in declared | sort -%}
        {%- set sequence = declared[name] or {} -%}
        {%- set goal = sequence.get('goal') or {} -%}
        {%- set category = sequence.get('category') or 'marketing' -%}
        {%- set default_share = 0.1 if category == 'marketing' else 0 -%}
        {%- set share = sequence.get('holdout_share') -%}
        {%- set share = default_share if share is none else share -%}
        {%- if goal.get('leaves_segment') -%}
            {%- do campaigns.append({'campaign': name, 'goal_type': 'leaves_segment',
                'goal_segment': none, 'holdout_share': share | float, 'category': category}) -%}
        {%- elif goal.get('enters') -%}
            {%- set target = goal.get('enters') | string -%}
            {%- set target = target[4:] if target.startswith('seg_') else target -%}
            {%- do campaigns.append({'campaign': name, 'goal_type': 'enters',
                'goal_segment': target, 'holdout_share': share | float, 'category': category}) -%}
        {%- endif -%}
    {%- endfor -%}
    {{- return(campaigns) -}}
{%- endmacro %}

{# The campaigns of lift_campaigns() as rows (no rows, same columns, when there are none). #}
{% macro lift_campaigns_rows() -%}
    {%- set campaigns = lift_campaigns() -%}
    {%- if campaigns | length == 0 %}
    select
        cast(null as {{ dbt.type_string() }}) as campaign,
        cast(null as {{ dbt.type_string() }}) as goal_type,
        cast(null as {{ dbt.type_string() }}) as goal_segment,
        cast(null as {{ dbt.type_float() }}) as holdout_share,
        cast(null as {{ dbt.type_string() }}) as category
    where 1 = 0
    {%- endif %}
    {%- for c in campaigns %}
    select
        cast({{ dbt.string_literal(c.campaign) }} as {{ dbt.type_string() }}) as campaign,
        cast({{ dbt.string_literal(c.goal_type) }} as {{ dbt.type_string() }}) as goal_type,
        cast({{ dbt.string_literal(c.goal_segment) if c.goal_segment else 'null' }}
            as {{ dbt.type_string() }}) as goal_segment,
        cast({{ c.holdout_share }} as {{ dbt.type_float() }}) as holdout_share,
        cast({{ dbt.string_literal(c.category) }} as {{ dbt.type_string() }}) as category
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
{%- endmacro %}

{#
    The CTEs `counts` and `final` of a lift mart, over a CTE fct_campaign_goal_outcomes, grouped
    by `grain` (a list of its columns). Only members whose goal window has closed count, so a
    young cohort is not read as a failure; members still inside it are counted apart. Shares,
    their difference (treated - held out) and its 95 % Newcombe interval are rounded to 6
    decimals (dbt.type_numeric); medians are over the members who reached the goal in the window.
#}
{% macro campaign_lift_ctes(grain) -%}
    {%- set min_group = var('lift_min_group_size', 30) | int -%}
    {%- set arms = ['treated', 'held_out'] -%}
counts as (

    select
        {%- for column in grain %}
        {{ column }},
        {%- endfor %}
        max(goal_type) as goal_type,
        max(goal_segment) as goal_segment,
        max(holdout_share) as holdout_share,
        {%- for arm in arms %}
        count(case when is_window_complete and arm = '{{ arm }}' then 1 end)
            as {{ arm }}_members,
        count(
            case when is_window_complete and arm = '{{ arm }}' and reached_goal_in_window then 1 end
        ) as {{ arm }}_reached_goal,
        {{ percentile(
            "case when is_window_complete and arm = '" ~ arm
            ~ "' and reached_goal_in_window then days_to_goal end", 0.5) }}
            as {{ arm }}_median_days_to_goal,
        {%- endfor %}
        count(case when not is_window_complete then 1 end) as members_in_window,
        count(case when arm = 'treated' and was_emailed then 1 end) as treated_emailed
    from fct_campaign_goal_outcomes
    group by {{ grain | join(', ') }}
    -- a campaign with a holdout: declared, or held-out members in the ledger
    having max(holdout_share) > 0 or count(case when arm = 'held_out' then 1 end) > 0

),

final as (

    select
        {%- for column in grain %}
        {{ column }},
        {%- endfor %}
        goal_type,
        goal_segment,
        holdout_share,
        treated_members,
        held_out_members,
        treated_reached_goal,
        held_out_reached_goal,
        cast({{ lift_share('treated_reached_goal', 'treated_members') }}
            as {{ dbt.type_numeric() }}) as treated_share,
        cast({{ lift_share('held_out_reached_goal', 'held_out_members') }}
            as {{ dbt.type_numeric() }}) as held_out_share,
        cast(
            {{ lift_share('treated_reached_goal', 'treated_members') }}
            - {{ lift_share('held_out_reached_goal', 'held_out_members') }}
            as {{ dbt.type_numeric() }}
        ) as share_difference,
        {%- for side in ['lower', 'upper'] %}
        cast({{ newcombe_difference_bound(
            'treated_reached_goal', 'treated_members',
            'held_out_reached_goal', 'held_out_members', side) }}
            as {{ dbt.type_numeric() }}) as difference_{{ side }}_95,
        {%- endfor %}
        treated_median_days_to_goal,
        held_out_median_days_to_goal,
        treated_members < {{ min_group }} or held_out_members < {{ min_group }} as is_too_small,
        members_in_window,
        treated_emailed
    from counts

)
{%- endmacro %}
