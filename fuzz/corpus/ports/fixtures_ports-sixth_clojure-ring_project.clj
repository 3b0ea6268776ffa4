(defproject todo-api "0.3.0-SNAPSHOT"
  :description "Todo list JSON API"
  :url "https://github.com/acme/todo-api"
  :license {:name "EPL-2.0"
            :url "https://www.eclipse.org/legal/epl-2.0/"}
  :dependencies [[org.clojure/clojure "1.11.1"]
                 [ring/ring-core "1.10.0"]
                 [ring/ring-jetty-adapter "1.10.0"]
                 [ring/ring-json "0.5.1"]
                 [compojure "1.7.0"]
                 [com.github.seancorfield/next.jdbc "1.3.883"]]
  :plugins [[lein-ring "0.12.6"]]
  :ring {:handler todo.handler/app
         :port 3002
         :auto-reload? true}
  :main ^:skip-aot todo.main
  :target-path "target/%s"
  :jvm-opts ["-Xmx512m"]
  :profiles {:uberjar {:aot :all
                       :uberjar-name "todo-api-standalone.jar"}
             :dev {:dependencies [[ring/ring-mock "0.4.0"]]}})
