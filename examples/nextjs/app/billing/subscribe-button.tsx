"use client";

// The "subscribe" button: the backend starts a checkout for the signed-in user (its own random
// customer key, success and fail URLs bound to a single-use state), then Toss's card window
// opens with exactly those. Toss redirects to billing-api, which redirects to the app.

import { useAuth } from "@clerk/nextjs";
import { loadTossPayments } from "@tosspayments/tosspayments-sdk";
import { useState } from "react";

import { billingApi, type Checkout } from "../../lib/billing-api";

/** An API 개별 연동 client key (test_ck_… / live_ck_…); the payment-widget key cannot do billing. */
const TOSS_CLIENT_KEY = process.env.NEXT_PUBLIC_TOSS_CLIENT_KEY ?? "";

export function SubscribeButton({ email, name }: { email?: string; name?: string }) {
  const { isSignedIn, getToken } = useAuth();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  async function subscribe() {
    setBusy(true);
    setError(null);
    try {
      const checkout = await billingApi<Checkout>("/v1/checkout", await getToken(), {
        method: "POST",
      });
      const tossPayments = await loadTossPayments(TOSS_CLIENT_KEY);
      await tossPayments.payment({ customerKey: checkout.customerKey }).requestBillingAuth({
        method: "CARD",
        successUrl: checkout.successUrl,
        failUrl: checkout.failUrl,
        customerEmail: email,
        customerName: name,
      });
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
      setBusy(false);
    }
  }

  return (
    <>
      <button type="button" onClick={subscribe} disabled={!isSignedIn || busy}>
        Pro 3,900원/월 구독하기
      </button>
      {error && <p role="alert">{error}</p>}
    </>
  );
}
