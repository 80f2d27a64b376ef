{#-
  Each user's latest email, only as the policy keeps it (ewh/privacy/policy.py): its keyed
  HMAC pseudonym and the address encrypted under the data key of the id that sent it
  (the event's userId, else its anonymousId). Exports decrypt it for consented members;
  erasing the user destroys the key. Few rows (identify events): a full rebuild.
-#}

with

stitched as (

    select * from {{ ref('int_events_stitched') }}

),

staged as (

    select * from {{ ref('stg_events') }}

),

emails as (

    select
        stitched.user_key,
        staged.message_id,
        staged.email_hash,
        staged.email_encrypted,
        coalesce(staged.user_id, staged.anonymous_id) as email_key_subject,
        staged.occurred_at,
        staged.received_at
    from staged
    inner join stitched
        on staged.message_id = stitched.message_id
    where staged.email_hash is not null

),

ranked as (

    select
        *,
        row_number() over (
            partition by user_key
            order by occurred_at desc, received_at desc, message_id desc
        ) as email_rank
    from emails

),

final as (

    select
        user_key,
        email_hash as email_hmac,
        email_encrypted,
        email_key_subject,
        occurred_at as email_stated_at
    from ranked
    where email_rank = 1

)

select * from final
