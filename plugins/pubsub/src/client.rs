//! A small Pub/Sub subscriber on tonic: connecting (plaintext to an
//! emulator, TLS with OAuth2 tokens to Google, as the bigtable plugin does),
//! Pull with a bounded wait, Acknowledge, ModifyAckDeadline, Publish (dead
//! letters), and the admin calls `configure` needs. Every call has a deadline the server sees too.

use std::time::Duration;

use googleapis_tonic_google_pubsub_v1::google::pubsub::v1 as pb;
use heroic_gcp::{connect, Auth};
use pb::publisher_client::PublisherClient;
use pb::subscriber_client::SubscriberClient;
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::config::{Config, Target};
use crate::error::PubsubError;

const SCOPES: &[&str] = &["https://www.googleapis.com/auth/pubsub"];

/// One message pulled and not yet acknowledged.
pub struct Received {
    pub ack_id: String,
    /// Pub/Sub's id of the message (for logs and dead letters).
    pub message_id: String,
    pub payload: Vec<u8>,
    /// The publisher's attributes, carried over to a dead letter.
    pub attributes: std::collections::HashMap<String, String>,
}

/// Cheap to clone: tonic channels multiplex.
#[derive(Clone)]
pub struct Client {
    subscriber: SubscriberClient<Channel>,
    publisher: PublisherClient<Channel>,
    auth: Auth,
    subscription: String,
    rpc_timeout: Duration,
}

impl Client {
    pub async fn connect(config: &Config) -> Result<Self, PubsubError> {
        let timeout = config.rpc_timeout();
        let (channel, auth) = match config.target()? {
            Target::Emulator(emulator) => (heroic_gcp::connect_emulator(&emulator, timeout).await?, Auth::none()),
            Target::Cloud { endpoint, credentials } => {
                let auth = Auth::new(&credentials, SCOPES).await?;
                (connect(&endpoint, true, timeout).await?, auth)
            }
        };
        Ok(Client {
            subscriber: SubscriberClient::new(channel.clone())
                .max_decoding_message_size(config.max_inbound_message_size),
            publisher: PublisherClient::new(channel),
            auth,
            subscription: config.subscription_name(),
            rpc_timeout: timeout,
        })
    }

    /// Wraps a message with credentials and a deadline (`grpc-timeout`).
    async fn request<T>(&self, message: T, timeout: Duration) -> Result<tonic::Request<T>, Status> {
        let mut request = tonic::Request::new(message);
        request.set_timeout(timeout);
        self.auth.authorize(&mut request).await?;
        Ok(request)
    }

    /// Pulls up to `max` messages, waiting at most `wait` for the first one.
    /// A wait that runs out is an empty answer, not an error.
    pub async fn pull(&self, max: usize, wait: Duration) -> Result<Vec<Received>, PubsubError> {
        #[allow(deprecated)] // return_immediately: left false, as Google recommends
        let message = pb::PullRequest {
            subscription: self.subscription.clone(),
            max_messages: max.min(1000) as i32,
            ..Default::default()
        };
        let call = async {
            let request = self.request(message, wait).await?;
            self.subscriber.clone().pull(request).await
        };
        // Our own timer too, a little later than the server's deadline, in
        // case an answer never comes.
        let answer = match tokio::time::timeout(wait + Duration::from_secs(2), call).await {
            Err(_) => return Ok(Vec::new()),
            Ok(Err(s)) if matches!(s.code(), Code::DeadlineExceeded | Code::Cancelled) => return Ok(Vec::new()),
            Ok(Err(s)) => return Err(PubsubError::rpc("pull", s)),
            Ok(Ok(answer)) => answer.into_inner(),
        };
        Ok(answer
            .received_messages
            .into_iter()
            .map(|m| {
                let message = m.message.unwrap_or_default();
                Received {
                    ack_id: m.ack_id,
                    message_id: message.message_id,
                    payload: message.data,
                    attributes: message.attributes,
                }
            })
            .collect())
    }

    /// Publishes one message to `topic` (a full name); `Ok` once Pub/Sub
    /// has stored it.
    pub async fn publish(
        &self,
        topic: &str,
        data: Vec<u8>,
        attributes: std::collections::HashMap<String, String>,
    ) -> Result<(), PubsubError> {
        let message = pb::PublishRequest {
            topic: topic.to_string(),
            messages: vec![pb::PubsubMessage { data, attributes, ..Default::default() }],
        };
        let request = self.request(message, self.rpc_timeout).await.map_err(|s| PubsubError::rpc("publish", s))?;
        self.publisher.clone().publish(request).await.map_err(|s| PubsubError::rpc("publish", s))?;
        Ok(())
    }

    pub async fn acknowledge(&self, ack_ids: Vec<String>) -> Result<(), PubsubError> {
        if ack_ids.is_empty() {
            return Ok(());
        }
        let message = pb::AcknowledgeRequest { subscription: self.subscription.clone(), ack_ids };
        let request = self.request(message, self.rpc_timeout).await.map_err(|s| PubsubError::rpc("acknowledge", s))?;
        self.subscriber.clone().acknowledge(request).await.map_err(|s| PubsubError::rpc("acknowledge", s))?;
        Ok(())
    }

    /// Sets the deadline of `ack_ids` to `seconds` from now; 0 is a nack
    /// (Pub/Sub redelivers at once).
    pub async fn modify_ack_deadline(&self, ack_ids: Vec<String>, seconds: u32) -> Result<(), PubsubError> {
        if ack_ids.is_empty() {
            return Ok(());
        }
        let message = pb::ModifyAckDeadlineRequest {
            subscription: self.subscription.clone(),
            ack_ids,
            ack_deadline_seconds: seconds as i32,
        };
        let request =
            self.request(message, self.rpc_timeout).await.map_err(|s| PubsubError::rpc("modifyAckDeadline", s))?;
        self.subscriber
            .clone()
            .modify_ack_deadline(request)
            .await
            .map_err(|s| PubsubError::rpc("modifyAckDeadline", s))?;
        Ok(())
    }

    /// Whether the subscription exists.
    pub async fn subscription_exists(&self) -> Result<bool, PubsubError> {
        let message = pb::GetSubscriptionRequest { subscription: self.subscription.clone() };
        let request =
            self.request(message, self.rpc_timeout).await.map_err(|s| PubsubError::rpc("getSubscription", s))?;
        match self.subscriber.clone().get_subscription(request).await {
            Ok(_) => Ok(true),
            Err(s) if s.code() == Code::NotFound => Ok(false),
            Err(s) => Err(PubsubError::rpc("getSubscription", s)),
        }
    }

    /// Creates the topic and the subscription unless they exist (another
    /// node creating them at the same time is fine).
    pub async fn create_if_missing(&self, topic: &str, ack_deadline_seconds: u32) -> Result<(), PubsubError> {
        let message = pb::Topic { name: topic.to_string(), ..Default::default() };
        let request = self.request(message, self.rpc_timeout).await.map_err(|s| PubsubError::rpc("createTopic", s))?;
        match self.publisher.clone().create_topic(request).await {
            Ok(_) => tracing::info!(topic, "created pubsub topic"),
            Err(s) if s.code() == Code::AlreadyExists => {}
            Err(s) => return Err(PubsubError::rpc("createTopic", s)),
        }
        let message = pb::Subscription {
            name: self.subscription.clone(),
            topic: topic.to_string(),
            ack_deadline_seconds: ack_deadline_seconds as i32,
            ..Default::default()
        };
        let request =
            self.request(message, self.rpc_timeout).await.map_err(|s| PubsubError::rpc("createSubscription", s))?;
        match self.subscriber.clone().create_subscription(request).await {
            Ok(_) => tracing::info!(subscription = %self.subscription, topic, "created pubsub subscription"),
            Err(s) if s.code() == Code::AlreadyExists => {}
            Err(s) => return Err(PubsubError::rpc("createSubscription", s)),
        }
        Ok(())
    }
}
