ThisBuild / organization := "com.acme"
ThisBuild / version      := "1.8.0"
ThisBuild / scalaVersion := "2.13.12"

lazy val root = (project in file("."))
  .enablePlugins(PlayScala)
  .settings(
    name := "catalog-service",
    libraryDependencies ++= Seq(
      guice,
      ws,
      "org.scalatestplus.play" %% "scalatestplus-play" % "7.0.0" % Test
    ),
    PlayKeys.playDefaultPort := 3000,
    Test / testOptions += Tests.Argument("-Dtimeout=3000")
  )

lazy val metrics = (project in file("metrics"))
  .settings(
    name := "catalog-metrics",
    libraryDependencies ++= Seq(
      "com.typesafe.akka" %% "akka-http"   % "10.5.3",
      "com.typesafe.akka" %% "akka-stream" % "2.8.5"
    )
  )
