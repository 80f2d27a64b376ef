{#-
  The published models' predictions, one row per user and model. The scores come from the
  scoring step (source raw.prediction_scores, written between the build of int_user_features
  and this model); without a published model the source is empty and so is this table.
  Users without analytics consent get no prediction, also when they revoked it after the
  scoring; a user no longer in the warehouse (erased, or merged into another) neither.
  percentile = 100 x the share of the model's scored users whose score is at or below this
  user's (ties share the highest): the top decile is percentile > 90.
-#}
with

scores as (

    select * from {{ source('raw', 'prediction_scores') }}

),

users as (

    select * from {{ ref('int_user_activity') }}

),

consent as (

    select * from {{ ref('int_user_consent') }}

),

eligible as (

    select
        scores.user_key,
        users.user_id,
        scores.model_name,
        scores.model_version,
        scores.score,
        scores.top_features,
        scores.as_of,
        scores.scored_at
    from scores
    inner join users
        on scores.user_key = users.user_key
    left join consent
        on scores.user_key = consent.user_key
    where coalesce(consent.has_analytics_consent, true)

),

final as (

    select
        user_key,
        user_id,
        model_name,
        model_version,
        cast(score as double) as score,
        -- 100 x the share at or below, as 100 x count / total (exact at 90: the top decile
        -- boundary; 100 x cume_dist() would give 90.00000000000001)
        100 * cast(count(*) over (
            partition by model_name order by score range between unbounded preceding and current row
        ) as double) / count(*) over (partition by model_name) as percentile,
        top_features,
        as_of,
        scored_at
    from eligible

)

select * from final
