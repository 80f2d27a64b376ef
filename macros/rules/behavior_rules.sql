{#-
  Behavior rules shared by several models, so that one definition serves marts, the
  lifecycle history and the tests. Each rule's thresholds are dbt vars.
-#}

{#-
  Engagement points of one event: var engagement_event_weights maps a canonical event
  type to its points (unlisted types score 0). Argument: event_type, a SQL expression.
-#}
{% macro engagement_points(event_type) -%}
    case {{ event_type }}
        {%- for type, weight in var('engagement_event_weights').items() | sort %}
        when '{{ type }}' then {{ weight }}
        {%- endfor %}
        else 0
    end
{%- endmacro %}


{#-
  The engagement score (0-100) from engagement points P earned in the window:
  round(100 * P / (P + var engagement_half_score_points)); 50 at exactly the half-score points.
-#}
{% macro engagement_score(points) -%}
    cast(round(
        100.0 * {{ points }} / ({{ points }} + {{ var('engagement_half_score_points') }}), 0
    ) as {{ dbt.type_int() }})
{%- endmacro %}


{#-
  Price tier of a product price: high_end at or above var price_tier_high_end_min_price,
  mid at or above var price_tier_mid_min_price, else budget; null when the price is null.
-#}
{% macro price_tier(price) -%}
    case
        when {{ price }} is null then null
        when {{ price }} >= {{ var('price_tier_high_end_min_price') }} then 'high_end'
        when {{ price }} >= {{ var('price_tier_mid_min_price') }} then 'mid'
        else 'budget'
    end
{%- endmacro %}


{#-
  Lifecycle stage, evaluated in this order (the first rule that holds wins):
    lapsed           orders >= 1 and no order in the last var lifecycle_lapsed_after_days days (the
                     last order is exactly that old or older; macro in_last)
    repeat_customer  orders >= var lifecycle_repeat_min_orders
    customer         orders >= 1
    lead             a known user (user_id) who added to cart or started a checkout
    prospect         a known user (user_id) without cart intent
    visitor          an anonymous user (never identified)
  Arguments are SQL expressions: orders (int), is_known, has_cart_intent, is_lapsed (booleans).
-#}
{% macro lifecycle_stage(orders, is_known, has_cart_intent, is_lapsed) -%}
    case
        when {{ orders }} >= 1 and {{ is_lapsed }} then 'lapsed'
        when {{ orders }} >= {{ var('lifecycle_repeat_min_orders') }} then 'repeat_customer'
        when {{ orders }} >= 1 then 'customer'
        when {{ is_known }} and {{ has_cart_intent }} then 'lead'
        when {{ is_known }} then 'prospect'
        else 'visitor'
    end
{%- endmacro %}


{#-
  The marketing channel a session came from, from its first event's utm tags and referrer:
  email (utm_medium email), paid_search (cpc, ppc, paid_search), social (utm_medium social
  or a social referrer), campaign (any other utm tag), organic_search (a search-engine
  referrer), referral (any other referrer), else direct.
-#}
{% macro acquisition_channel(utm_source, utm_medium, utm_campaign, referrer) -%}
    case
        when lower({{ utm_medium }}) = 'email' then 'email'
        when lower({{ utm_medium }}) in ('cpc', 'ppc', 'paid_search', 'paidsearch') then 'paid_search'
        when lower({{ utm_medium }}) in ('social', 'paid_social', 'social_paid') then 'social'
        when
            {{ utm_medium }} is not null or {{ utm_source }} is not null or {{ utm_campaign }} is not null
            then 'campaign'
        when
            lower({{ referrer }}) like '%google.%'
            or lower({{ referrer }}) like '%bing.%'
            or lower({{ referrer }}) like '%duckduckgo.%'
            or lower({{ referrer }}) like '%yahoo.%'
            or lower({{ referrer }}) like '%ecosia.%'
            then 'organic_search'
        when
            lower({{ referrer }}) like '%facebook.%'
            or lower({{ referrer }}) like '%instagram.%'
            or lower({{ referrer }}) like '%linkedin.%'
            or lower({{ referrer }}) like '%twitter.%'
            or lower({{ referrer }}) like '%//t.co/%'
            or lower({{ referrer }}) like '%tiktok.%'
            then 'social'
        when {{ referrer }} is not null and trim({{ referrer }}) <> '' then 'referral'
        else 'direct'
    end
{%- endmacro %}


{#- A quoted, comma-separated SQL list from a list var, lower-cased: ('a', 'b'). -#}
{% macro lower_sql_list(values) -%}
    ({%- for value in values -%}'{{ value | lower }}'{% if not loop.last %}, {% endif %}{%- endfor -%})
{%- endmacro %}
